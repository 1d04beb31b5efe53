"""Pretrainers: train a component (and the shared embedder) on a self-supervised task.

A ``Pretrainer`` builds its component ``model`` (``(B, L, D_emb)`` -> ``(B, L, output_dim)``) and a
training-only head. ``fit`` runs a ``tf.data`` pipeline: the texts are turned into ids once, a
generator cuts a batch of random windows at a time out of them (one numpy gather), and each batch is
corrupted with vectorised tensor ops (``masking.mask_batch``), never a Python step per example (unless
an augmentor, a Python function per text, is given). The embedder is trained too: its layers are the
same objects the pretrainer calls.

Without a ``preprocessor``, ``fit`` builds one from the data it is given, exactly as
``Preprocessor(max_example_len=embedder.max_len).fit(data)`` would (same data, same vocabulary), and
refuses to train if that vocabulary's ``n_chars`` differs from the embedder's; pass the preprocessor
the embedder was made with to train on other data. A preprocessor built this way is kept (as
``.preprocessor``) and reused by later calls to ``fit``, so ids stay the same across calls.

How texts become examples is ``cclm_core.examples``: each epoch draws a random window of every text
longer than the input (``get_substr``), augments it with ``augmentor=`` when one is given, and a
pretrainer made with ``seed=`` draws the same windows, augmentations and masks every time.

One base, many components: train the first pretrainer with the embedder, ``embedder.freeze()``, then
train the others on it; each trains only its own component (``Pretrainer.freeze()`` freezes the
component itself, as in the original library). Changing what is frozen takes effect at the next ``fit``
(the training model is rebuilt, with a fresh optimizer). A pretrainer remembers the embedder it was
trained on and refuses to save once that embedder has changed (another pretrainer trained it).
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from cclm_core.augmentation import Augmentor, seeded_rng
from cclm_core.compat import short
from cclm_core.component import Component, describe_base, load_component
from cclm_core.embedder import Embedder
from cclm_core.errors import DataError, IncompatibleComponentError
from cclm_core.examples import Corpus, get_substr
from cclm_core.fingerprint import embedder_fingerprint
from cclm_core.layers import SampledSoftmaxHead, TokenSpanHead
from cclm_core.masking import MaskingConfig, mask_batch
from cclm_core.networks import MaskedLanguageNetwork, ReconstructionNetwork
from cclm_core.preprocessing import Preprocessor, extract_texts

#: How many batches are cut and masked at a time.
CHUNK = 16

__all__ = ["CharacterReconstructionPretrainer", "MaskedLanguagePretrainer", "Pretrainer", "load_component"]


class _TrainingModel(keras.Model):
    """Embedder + component + head, with a train step that only scores the corrupted positions."""

    def __init__(self, pretrainer: Pretrainer) -> None:
        super().__init__(name="pretraining")
        self.embedder_model = pretrainer.embedder.model
        self.component_model = pretrainer.model
        self.head = pretrainer.head
        self.loss_fn = pretrainer.loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def call(self, ids: Any, training: bool = False) -> Any:
        # a frozen embedder runs in inference mode: training a component never changes it
        hidden = self.embedder_model(ids, training=training and self.embedder_model.trainable)
        return self.component_model(hidden, training=training)

    def train_step(self, data: Any) -> dict[str, Any]:
        inputs, targets, weights = data
        with tf.GradientTape() as tape:
            loss = self.loss_fn(self(inputs, training=True), targets, weights)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}

    @property
    def metrics(self) -> list[Any]:
        return [self.loss_tracker]


class Pretrainer:
    """Base class: subclasses define ``task``, ``build_component``, ``build_head`` and ``loss``."""

    task = "base"

    def __init__(
        self,
        embedder: Embedder,
        preprocessor: Preprocessor | None = None,
        output_dim: int = 64,
        masking: MaskingConfig | None = None,
        learning_rate: float = 1e-3,
        augmentor: Augmentor | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(embedder, Embedder):
            raise DataError(f"embedder must be an Embedder, got {type(embedder).__name__}")
        if augmentor is not None and not callable(getattr(augmentor, "transform", None)):
            raise DataError(
                f"augmentor must have a transform(text) method, got {type(augmentor).__name__}",
                hint="pass a cclm_core.augmentation.Augmentor",
            )
        self.augmentor = augmentor
        self.rng = seeded_rng(seed)
        self.embedder = embedder
        self.preprocessor = preprocessor
        if preprocessor is not None:
            self.embedder.check_preprocessor(preprocessor)
        self.output_dim = output_dim
        self.masking = masking or self.default_masking()
        self.learning_rate = learning_rate
        self.model = self.build_component()
        self.head = self.build_head()
        self._trainer: _TrainingModel | None = None
        self._trainer_trains: tuple[int, ...] = ()
        self._trained_base: dict[str, Any] | None = None

    def default_masking(self) -> MaskingConfig:
        return MaskingConfig()

    def build_component(self) -> keras.Model:
        raise NotImplementedError

    def build_head(self) -> keras.layers.Layer:
        raise NotImplementedError

    def loss(self, hidden: Any, targets: Any, weights: Any) -> Any:
        raise NotImplementedError

    def _component_name(self) -> str:
        # a random suffix keeps names unique when several components of one task share a ComposedModel
        return f"{self.task}_component_{secrets.token_hex(3)}"

    @property
    def component(self) -> Component:
        """The component alone, with its task and, once trained, the base it was trained on."""
        return Component(self.model, task=self.task, base=self._trained_base)

    def freeze(self) -> None:
        """Stop training this pretrainer's component (its head still trains); takes effect at ``fit``."""
        self.model.trainable = False

    def unfreeze(self) -> None:
        """Train this pretrainer's component again from the next ``fit``."""
        self.model.trainable = True

    def _preprocessor_for(self, texts: list[str]) -> Preprocessor:
        if self.preprocessor is None:
            prep = Preprocessor(max_example_len=self.embedder.max_len).fit(texts)
            self.embedder.check_preprocessor(prep)
            self.preprocessor = prep
        return self.preprocessor

    def get_substr(self, text: str) -> str:
        """A random window of ``text`` as long as the embedder's input (all of it when not longer)."""
        return get_substr(text, self.embedder.max_len, self.rng)

    def dataset(self, data: Any, batch_size: int = 32, text_column: str | None = None) -> tf.data.Dataset:
        """Batches of ``(inputs, targets, weights)`` from ``data``: random windows, corrupted per batch."""
        texts = extract_texts(data, text_column)
        if not any(texts):
            raise DataError("cannot pretrain on empty data", hint="pass at least one non-empty string")
        corpus = Corpus(texts, self._preprocessor_for(texts), self.embedder.max_len, self.augmentor)
        # a known length, so that Keras counts the steps of an epoch instead of running into its end
        steps = tf.data.experimental.assert_cardinality(-(-len(corpus) // batch_size))
        return self.batches(corpus, batch_size).apply(steps).prefetch(tf.data.AUTOTUNE)

    def batches(self, corpus: Corpus, batch_size: int) -> tf.data.Dataset:
        """Character batches of ``corpus``, masked with vectorised ops (``masking.mask_batch``).

        ``CHUNK`` batches are cut and masked at once and split into batches by ``rebatch`` (fewer, larger
        steps cost less). Without an augmentor the windows are drawn inside ``tf.data``
        (``Corpus.window_batches``); with one, a generator hands over a chunk at a time (one Python
        step per chunk, not per batch).
        """
        n_chars, masking, rng = self.embedder.n_chars, self.masking, self.rng
        if corpus.augmentor is None:
            seeds = rng.integers(0, 2**31 - 1, size=2)
            windows = corpus.window_batches(
                batch_size * CHUNK, seeds, lambda ids, seed: mask_batch(ids, n_chars, masking, ids, seed)
            )
            return windows.rebatch(batch_size)

        def generate() -> Any:
            for rows in corpus.order(rng, batch_size * CHUNK):
                inputs, clean = corpus.character_batch(rows, rng)
                yield inputs, clean, rng.integers(0, 2**31 - 1, size=2)

        ids = tf.TensorSpec((None, corpus.length), tf.int32)
        signature = (ids, ids, tf.TensorSpec((2,), tf.int64))
        chunks = tf.data.Dataset.from_generator(generate, output_signature=signature)
        masked = chunks.map(
            lambda inputs, clean, seed: mask_batch(inputs, n_chars, masking, clean, seed),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return masked.rebatch(batch_size)

    def _trains(self) -> tuple[int, ...]:
        """Which variables a training step updates now (freezing or unfreezing anything changes it)."""
        parts = (self.embedder.model, self.model, self.head)
        return tuple(id(v) for part in parts for v in part.trainable_variables)

    def training_model(self) -> keras.Model:
        """The compiled model ``fit`` trains.

        Kept across fits, so the optimizer state carries over, until what is frozen changes: the traced
        train step and the optimizer only know the variables that were trainable when they were built, so
        the model is then built and compiled again.
        """
        trains = self._trains()
        if self._trainer is None or trains != self._trainer_trains:
            self._trainer = _TrainingModel(self)
            self._trainer.compile(optimizer=keras.optimizers.Adam(self.learning_rate), jit_compile=False)
            self._trainer.optimizer.build(self._trainer.trainable_variables)
            self._trainer_trains = trains
        return self._trainer

    def fit(
        self,
        data: Any,
        epochs: int = 1,
        batch_size: int = 32,
        verbose: int = 0,
        text_column: str | None = None,
    ) -> keras.callbacks.History:
        """Train the component and the embedder on ``data`` (List[str] or ``datasets.Dataset``)."""
        if not isinstance(epochs, int) or epochs < 1 or not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(
                f"epochs and batch_size must be positive integers, got {epochs!r}, {batch_size!r}"
            )
        dataset = self.dataset(data, batch_size, text_column)
        history = self.training_model().fit(dataset, epochs=epochs, verbose=verbose, shuffle=False)
        self._trained_base = self.base()
        return history

    def base(self) -> dict[str, Any]:
        """The base this component is trained on right now (embedder weights, vocabulary, sizes)."""
        with tempfile.TemporaryDirectory(prefix="cclm-base-") as tmp:
            fingerprint = embedder_fingerprint(self.embedder.save(tmp))
        return describe_base(fingerprint, self.embedder, self.preprocessor)

    def save(self, folder: str | Path) -> Path:
        """Save the component (not the training head) with the base it was trained on into ``folder``.

        Refused when the embedder changed after this pretrainer last trained (another pretrainer trained
        the shared embedder): the component would not fit the embedder it would claim as its base.
        """
        base = self.base()
        trained = self._trained_base
        if trained is not None and trained["embedder"] != base["embedder"]:
            raise IncompatibleComponentError(
                f"the embedder changed after this {self.task} pretrainer was trained on it "
                f"(trained on {short(trained['embedder'])}, now {short(base['embedder'])}); "
                "its component no longer fits that embedder",
                hint="fit this pretrainer again, or freeze the embedder (embedder.freeze()) before "
                "training the other pretrainers that share it",
            )
        return self.component.save(folder, base)


class MaskedLanguagePretrainer(Pretrainer):
    """Masked spans predicted by a small transformer, trained with sampled softmax.

    ``targets="characters"`` (the default) masks character spans and predicts each character.
    ``targets="tokens"`` is the original cclm's objective: one word piece of the preprocessor's tokenizer
    per window (at least ``min_mask_len`` characters long where possible) is masked and the token is
    predicted from the component's states over its span (``layers.TokenSpanHead``). It needs a
    preprocessor with a tokenizer, given or built by ``fit``.
    """

    task = "mlm"
    TARGETS = ("characters", "tokens")

    def __init__(
        self,
        embedder: Embedder,
        preprocessor: Preprocessor | None = None,
        output_dim: int = 64,
        hidden_dim: int = 64,
        num_heads: int = 2,
        n_layers: int = 1,
        num_sampled: int = 16,
        targets: str = "characters",
        min_mask_len: int = 3,
        **kwargs: Any,
    ) -> None:
        if targets not in self.TARGETS:
            raise DataError(f"targets must be one of {self.TARGETS}, got {targets!r}")
        if not isinstance(min_mask_len, int) or isinstance(min_mask_len, bool) or min_mask_len < 1:
            raise DataError(f"min_mask_len must be a positive integer, got {min_mask_len!r}")
        self.hidden_dim, self.num_heads, self.n_layers, self.num_sampled = (
            hidden_dim,
            num_heads,
            n_layers,
            num_sampled,
        )
        self.targets, self.min_mask_len = targets, min_mask_len
        super().__init__(embedder, preprocessor, output_dim, **kwargs)

    def build_component(self) -> keras.Model:
        return MaskedLanguageNetwork(
            self.embedder.max_len,
            self.embedder.output_dim,
            self.output_dim,
            self.hidden_dim,
            self.num_heads,
            self.n_layers,
            name=self._component_name(),
        )

    def build_head(self) -> keras.layers.Layer | None:
        if self.targets == "tokens":
            tokenizer = self.preprocessor.tokenizer if self.preprocessor else None
            if tokenizer is None:
                return None  # built once fit knows the preprocessor (see batches)
            head: keras.layers.Layer = TokenSpanHead(
                tokenizer.get_vocab_size(), self.num_sampled, name="mlm_head"
            )
        else:
            head = SampledSoftmaxHead(self.embedder.n_chars, self.num_sampled, name="mlm_head")
        head.build((None, None, self.output_dim))
        return head

    def batches(self, corpus: Corpus, batch_size: int) -> tf.data.Dataset:
        if self.targets == "characters":
            return super().batches(corpus, batch_size)
        if corpus.preprocessor.tokenizer is None:
            raise DataError(
                "targets='tokens' needs a preprocessor with a tokenizer, and this one has none",
                hint="fit the Preprocessor without skip_tokenizer=True",
            )
        if self.head is None:
            self.head = self.build_head()
        rng, min_mask_len = self.rng, self.min_mask_len

        def generate() -> Any:
            for rows in corpus.order(rng, batch_size):
                yield corpus.token_batch(rows, rng, min_mask_len)

        signature = (
            tf.TensorSpec((None, corpus.length), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None, corpus.length), tf.float32),
        )
        return tf.data.Dataset.from_generator(generate, output_signature=signature)

    def loss(self, hidden: Any, targets: Any, weights: Any) -> Any:
        if self.targets == "tokens":
            return self.head.span_loss(hidden, targets, weights)
        return self.head.masked_loss(hidden, targets, weights)


class CharacterReconstructionPretrainer(Pretrainer):
    """Single characters masked or replaced by typos; a conv stack predicts the originals (full softmax)."""

    task = "reconstruction"

    def __init__(
        self,
        embedder: Embedder,
        preprocessor: Preprocessor | None = None,
        output_dim: int = 32,
        n_layers: int = 1,
        kernel_size: int = 3,
        **kwargs: Any,
    ) -> None:
        self.n_layers, self.kernel_size = n_layers, kernel_size
        super().__init__(embedder, preprocessor, output_dim, **kwargs)

    def default_masking(self) -> MaskingConfig:
        return MaskingConfig(rate=0.15, span_len=1, random_rate=0.5, keep_rate=0.1)

    def build_component(self) -> keras.Model:
        return ReconstructionNetwork(
            self.embedder.max_len,
            self.embedder.output_dim,
            self.output_dim,
            self.n_layers,
            self.kernel_size,
            name=self._component_name(),
        )

    def build_head(self) -> keras.layers.Layer:
        head = keras.layers.Dense(self.embedder.n_chars, name="reconstruction_head")
        head.build((None, None, self.output_dim))
        return head

    def loss(self, hidden: Any, targets: Any, weights: Any) -> Any:
        losses = keras.losses.sparse_categorical_crossentropy(targets, self.head(hidden), from_logits=True)
        return tf.math.divide_no_nan(tf.reduce_sum(losses * weights), tf.reduce_sum(weights))
