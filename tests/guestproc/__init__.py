"""Tests of the guest side: WASI, and (later) the guest process."""
