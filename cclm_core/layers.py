"""Custom Keras layers of the core, all registered under the ``cclm_core`` package.

They are plain layers with a ``get_config`` that round-trips through ``from_config``: saved configs
name them as ``cclm_core>ClassName`` and are rebuilt in Keras safe mode, never from code in a file.

Every layer here carries the padding mask (``supports_masking``): convolutions see zeros where the
padding is, attention never attends to it, so outputs at real characters do not depend on the padding.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

_register = keras.saving.register_keras_serializable(package="cclm_core")


def zero_padding(x: Any, mask: Any) -> Any:
    """``x`` with the vectors at padded positions (``mask`` False) set to zero."""
    if mask is None:
        return x
    return x * tf.cast(mask, x.dtype)[..., tf.newaxis]


@_register
class MaskedConv1D(keras.layers.Conv1D):
    """A Conv1D that sees zeros at padded positions and passes the padding mask on.

    A kernel reaching past the last character then reads the same zeros whatever the padding row of
    the character embedding holds and however long the padding is.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.supports_masking = True

    def call(self, inputs: Any, mask: Any = None) -> Any:
        return super().call(zero_padding(inputs, mask))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return mask


@_register
class MaskedGlobalMaxPooling1D(keras.layers.Layer):
    """``(B, L, D)`` -> ``(B, D)``: the maximum over real characters only.

    Keras's ``GlobalMaxPooling1D`` drops the padding mask and pools over the padding too; this one is the
    max-pooling head for models built on a ``ComposedModel`` (an example with no real character gives 0).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x: Any, mask: Any = None) -> Any:
        if mask is None:
            return tf.reduce_max(x, axis=1)
        inside = tf.cast(mask, "bool")[..., tf.newaxis]
        pooled = tf.reduce_max(tf.where(inside, x, tf.cast(x.dtype.min, x.dtype)), axis=1)
        return tf.where(tf.reduce_any(inside, axis=1), pooled, tf.zeros_like(pooled))

    def compute_mask(self, x: Any, mask: Any = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[-1])


@_register
class ResidualConvBlock(keras.layers.Layer):
    """Conv1D over characters, added back to its input, then layer-normalised.

    The residual keeps stacks of blocks trainable from the first steps, which matters for the short
    pretraining runs the core is used with.
    """

    def __init__(self, filters: int, kernel_size: int = 5, dropout: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.conv = keras.layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name="conv")
        self.drop = keras.layers.Dropout(dropout)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] != self.filters:
            raise ValueError(f"ResidualConvBlock needs input width {self.filters}, got {input_shape[-1]}")
        self.conv.build(input_shape)
        self.norm.build(input_shape)
        super().build(input_shape)

    def call(self, x: Any, training: bool = False, mask: Any = None) -> Any:
        return self.norm(x + self.drop(self.conv(zero_padding(x, mask)), training=training))

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        return mask

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "dropout": self.dropout,
        }


@_register
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position, so attention layers can tell positions apart."""

    def __init__(self, max_len: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_len = max_len
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        self.positions = self.add_weight(
            name="positions", shape=(self.max_len, input_shape[-1]), initializer="glorot_uniform"
        )
        super().build(input_shape)

    def call(self, x: Any) -> Any:
        length = tf.shape(x)[1]
        return x + self.positions[tf.newaxis, :length, :]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_len": self.max_len}


@_register
class TransformerBlock(keras.layers.Layer):
    """Post-norm transformer encoder block: self-attention and a feed-forward layer, each residual."""

    def __init__(
        self, num_heads: int, key_dim: int, ff_dim: int, dropout: float = 0.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.num_heads, self.key_dim, self.ff_dim, self.dropout = num_heads, key_dim, ff_dim, dropout
        self.attention = keras.layers.MultiHeadAttention(
            num_heads, key_dim, dropout=dropout, name="attention"
        )
        self.ff_in = keras.layers.Dense(ff_dim, activation="gelu", name="ff_in")
        self.ff_out: keras.layers.Dense | None = None
        self.norm1 = keras.layers.LayerNormalization(epsilon=1e-6, name="norm1")
        self.norm2 = keras.layers.LayerNormalization(epsilon=1e-6, name="norm2")
        self.drop = keras.layers.Dropout(dropout)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        width = input_shape[-1]
        self.ff_out = keras.layers.Dense(width, name="ff_out")
        self.attention.build(input_shape, input_shape)
        self.ff_in.build(input_shape)
        self.ff_out.build((*input_shape[:-1], self.ff_dim))
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        super().build(input_shape)

    def call(self, x: Any, training: bool = False, mask: Any = None) -> Any:
        # Keys at padded positions are never attended to; padded queries attend to the real keys. Only the
        # (B, 1, L) key mask is given: MultiHeadAttention would otherwise also read the query's Keras
        # mask and build a (B, L, L) one, which costs time and changes nothing at real positions.
        keys = None if mask is None else tf.cast(mask, "bool")[:, tf.newaxis, :]
        query = x if mask is None else tf.identity(x)  # a tensor without the Keras mask attached
        x = self.norm1(x + self.attention(query, query, attention_mask=keys, training=training))
        return self.norm2(x + self.drop(self.ff_out(self.ff_in(x)), training=training))

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        return mask

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "ff_dim": self.ff_dim,
            "dropout": self.dropout,
        }


@_register
class SampledSoftmaxHead(keras.layers.Layer):
    """Output weights for masked-character prediction trained with sampled softmax.

    Used only while pretraining: ``masked_loss`` scores the hidden states of masked positions against
    the true character and ``num_sampled`` sampled ones. The log-uniform sampler fits because the
    vocabulary ids are ordered by descending frequency.
    """

    def __init__(self, n_classes: int, num_sampled: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_classes = n_classes
        self.num_sampled = max(1, min(num_sampled, n_classes - 1))

    def build(self, input_shape: tuple) -> None:
        dim = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(self.n_classes, dim), initializer="glorot_uniform"
        )
        self.bias = self.add_weight(name="bias", shape=(self.n_classes,), initializer="zeros")
        super().build(input_shape)

    def call(self, hidden: Any) -> Any:
        """Full logits, for evaluation; training uses ``masked_loss``."""
        return tf.matmul(hidden, self.kernel, transpose_b=True) + self.bias

    def masked_loss(self, hidden: Any, targets: Any, weights: Any) -> Any:
        """Mean sampled-softmax loss over the positions where ``weights`` is 1."""
        picked = tf.boolean_mask(hidden, weights > 0)
        labels = tf.cast(tf.boolean_mask(targets, weights > 0), tf.int64)[:, tf.newaxis]
        losses = tf.nn.sampled_softmax_loss(
            self.kernel, self.bias, labels, picked, self.num_sampled, self.n_classes
        )
        return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(tf.size(losses), losses.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_classes": self.n_classes, "num_sampled": self.num_sampled}


@_register
class TokenSpanHead(keras.layers.Layer):
    """Output weights for predicting the word piece under a masked span, trained with sampled softmax.

    Used only while pretraining, for the original cclm's token objective: the component's states over
    the masked characters are max-pooled into one vector per example and scored against the true token
    of the preprocessor's tokenizer and ``num_sampled`` sampled ones. Examples without a span are skipped.
    """

    def __init__(self, n_tokens: int, num_sampled: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_tokens = n_tokens
        self.num_sampled = max(1, min(num_sampled, n_tokens - 1))
        self.supports_masking = True  # the spans say which positions count; padding is never in a span

    def compute_mask(self, inputs: Any, mask: Any = None) -> None:
        return None  # one vector per example: nothing left to mask

    def build(self, input_shape: tuple) -> None:
        dim = input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(self.n_tokens, dim), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.n_tokens,), initializer="zeros")
        super().build(input_shape)

    @staticmethod
    def pool(hidden: Any, spans: Any) -> Any:
        """``(B, D)``: the maximum of ``hidden`` over each example's span positions."""
        inside = tf.cast(spans, tf.bool)[..., tf.newaxis]
        return tf.reduce_max(tf.where(inside, hidden, tf.cast(-1e9, hidden.dtype)), axis=1)

    def call(self, hidden: Any, spans: Any) -> Any:
        """Full token logits ``(B, n_tokens)`` of each example's span, for evaluation."""
        return tf.matmul(self.pool(hidden, spans), self.kernel, transpose_b=True) + self.bias

    def span_loss(self, hidden: Any, token_ids: Any, spans: Any) -> Any:
        """Mean sampled-softmax loss over the examples that have a masked span."""
        has_span = tf.reduce_any(spans > 0, axis=1)
        pooled = tf.boolean_mask(self.pool(hidden, spans), has_span)
        labels = tf.cast(tf.boolean_mask(token_ids, has_span), tf.int64)[:, tf.newaxis]
        losses = tf.nn.sampled_softmax_loss(
            self.kernel, self.bias, labels, pooled, self.num_sampled, self.n_tokens
        )
        return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.cast(tf.size(losses), losses.dtype))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_tokens": self.n_tokens, "num_sampled": self.num_sampled}
