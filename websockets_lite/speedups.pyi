"""The optional C masker (built from speedups.c when a compiler is present)."""

BytesLike = bytes | bytearray | memoryview

def apply_mask(data: BytesLike, key: BytesLike, /) -> bytes: ...
