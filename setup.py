"""Builds the ledger's native core (reserve/ledger/_native.c); everything else is in
pyproject.toml. The extension links OpenSSL's libcrypto for SHA-256. It is optional for the
build so that a machine without a C compiler still installs the pure-Python ledger, which
gives the same answers more slowly; `scripts/setup.sh` installs the headers and the test
suite (tests/unit/test_native.py) fails when the core was not built.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "reserve.ledger._native",
    sources=["reserve/ledger/_native.c"],
    libraries=["crypto"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers"],
    optional=True,
)])
