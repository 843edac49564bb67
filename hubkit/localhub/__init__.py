"""The bundled local hub: a stand-in for AIGNE Hub's admin API on 127.0.0.1 (being moved)."""
