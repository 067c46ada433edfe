"""Controller-side code shared by the filter and action plugins (never shipped to managed hosts)."""
