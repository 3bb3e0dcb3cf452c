"""Training rules: the POST course catalog and roster rules. No I/O."""
