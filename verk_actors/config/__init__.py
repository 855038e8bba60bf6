"""A node's settings (``Settings``, ``QueueSpec``) and where they come from: flags,
``VERK_*`` variables, a TOML file, defaults."""
