"""Builds the optional C masker (websockets_lite/speedups.c) when a compiler
is present; without one, the install goes on and the pure-Python masker is
used. Set WEBSOCKETS_LITE_REQUIRE_SPEEDUPS=1 to make a failed build an error.
Everything else is in pyproject.toml."""

import os

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "websockets_lite.speedups",
            sources=["websockets_lite/speedups.c"],
            optional=not os.environ.get("WEBSOCKETS_LITE_REQUIRE_SPEEDUPS"),
        )
    ]
)
