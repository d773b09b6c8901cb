"""Policy rules as plain functions, importable without pulumi_policy."""
