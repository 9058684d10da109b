"""Data: the canonical preference-pair schema, converters, mixtures, exporters (the synthetic demo task is in
:mod:`unireward.demo.synthetic`)."""

from unireward.data.schema import PreferencePair, SchemaError, read_pairs, write_pairs

__all__ = ["PreferencePair", "SchemaError", "read_pairs", "write_pairs"]
