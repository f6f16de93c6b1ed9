"""Framework adapters (TRL, verl). Each imports its framework only when a framework class is used."""
