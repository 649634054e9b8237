"""Campaign and policy files as YAML: read safely with every value's line (`reading`), and validation
errors turned into one-line problems a marketer can act on (`problems`)."""
