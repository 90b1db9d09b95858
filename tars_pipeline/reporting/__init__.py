"""Outputs: the JSON files, the retrospective data model and its Markdown rendering."""

RETRO_MD = "GA_7DAY_RETROSPECTIVE.md"
RETRO_JSON = "GA_7DAY_RETROSPECTIVE.json"
RETRO_HTML = "GA_7DAY_RETROSPECTIVE.html"
