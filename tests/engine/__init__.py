"""Tests of the WebAssembly engine: decoder, validator, compiler, runtime."""
