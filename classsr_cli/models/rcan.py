"""rcan branch family: built by a helper; placeholder until then."""
