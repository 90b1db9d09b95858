"""Outputs: the JSON files, the retrospective data model and its Markdown rendering."""
