"""Talking to shelves: URLs, git, Git LFS. Importing this package imports nothing heavy.

url.py          ShelfURL: the one parser of shelf URLs (local path, scp-like, file://, git://, ssh://,
                http(s)://), with the local path, a redacted display form, the mirror key, the LFS endpoint
"""
