"""Applications whose candidates become R&S systems (imported as rands.applications)."""
