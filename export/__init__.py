"""Host-side export: source -> program -> compat -> quantize -> optimize -> bundle -> verify."""
