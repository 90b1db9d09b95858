"""GitHub issues for the retrospective's action items, never opened twice.

One issue per action item of the configured priorities (P0/P1 by default), titled as the
seed's snippet titles them (`f"{priority}: {description}"`), labelled
`[priority, "retrospective", ...]`, with the recommendation's evidence in the body.

De-duplication: each issue body carries a hidden marker
`<!-- tars-fingerprint: <sha256> -->`, a hash of what the finding *is* (release, priority,
category, KPI, service, SLO, resource type) — not of its title, whose numbers move when a
day is re-run. Before creating, every issue of the repository labelled `retrospective`,
open *and* closed, is listed through the REST API (paginated) and its marker read; a
finding whose issue exists, even one a human closed as "won't fix", is skipped. So a re-run
of the Day-7 notifications never opens a twin.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

from tars_pipeline import __version__
from tars_pipeline.notify.http import (
    HttpClient,
    HttpError,
    HttpResponse,
    RetryCancelledError,
    redact_url,
)
from tars_pipeline.reporting.escape import markdown

SEARCH_LABEL = "retrospective"
MARKER = "tars-fingerprint"
MARKER_PATTERN = re.compile(r"<!--\s*tars-fingerprint:\s*([0-9a-f]{64})\s*-->")
FINGERPRINT_FIELDS = ("kpi", "service", "slo", "resource_type")
MAX_TITLE_CHARS = 256  # GitHub's limit for an issue title
MAX_PAGES = 100  # 10,000 labelled issues: beyond that something is wrong, stop and say so
API_VERSION = "2022-11-28"


def fingerprint(
    release: str, priority: str, category: str | None, evidence: Any, description: str
) -> str:
    """sha256 of the finding's identity: stable across re-runs whose numbers changed.

    The identity is (release, priority, category) plus the evidence's KPI, service, SLO
    and resource type; an item with no KPI or service in its evidence falls back to its
    description. JSON encoding keeps the fields apart (no delimiter ambiguity).
    """
    identity: dict[str, Any] = {"v": 1, "release": release, "priority": priority}
    identity["category"] = category
    fields = evidence if isinstance(evidence, Mapping) else {}
    for name in FINGERPRINT_FIELDS:
        identity[name] = fields.get(name)
    if identity["kpi"] is None and identity["service"] is None:
        identity["description"] = description
    encoded = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def marker(fingerprint_hex: str) -> str:
    return f"<!-- {MARKER}: {fingerprint_hex} -->"


def _one_line(text: object) -> str:
    return "".join(ch for ch in " ".join(str(text).split()) if ch.isprintable())


def _md(text: object) -> str:
    """Markdown-escaped, and @mentions broken so a service named `@org/team` pings no one."""
    return markdown(text).replace("@", "@\u2060")


def _value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(_md(v) for v in value) if value else "none"
    if isinstance(value, dict | list):
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return _md(encoded if len(encoded) <= 500 else encoded[:499] + "…")
    return _md(value)


@dataclass(frozen=True)
class IssueDraft:
    """What would be POSTed for one action item."""

    fingerprint: str
    priority: str
    title: str
    body: str
    labels: tuple[str, ...]

    def payload(self) -> dict[str, Any]:
        return {"title": self.title, "body": self.body, "labels": list(self.labels)}


def _body(
    model: Mapping[str, Any], item: Mapping[str, Any], rec: Mapping[str, Any], digest: str
) -> str:
    release = model["release"]["name"]
    lines = [
        f"**{item['priority']}** action item from the GA +7 retrospective of release "
        f"**{_md(release)}** (due: {_md(item.get('due') or 'n/a')}).",
        "",
        f"> {_md(item['description'])}",
        "",
    ]
    if rec.get("action"):
        lines += [f"**What to do:** {_md(rec['action'])}", ""]
    evidence = rec.get("evidence")
    if isinstance(evidence, Mapping) and evidence:
        lines += ["### Evidence", "", "| field | value |", "| --- | --- |"]
        lines += [f"| {_md(key)} | {_value(value)} |" for key, value in evidence.items()]
        lines.append("")
    generated = model.get("generated_at", "")
    lines += [
        "---",
        f"<sub>Opened by tars-observability {__version__} from GA_7DAY_RETROSPECTIVE.json "
        f"(generated {_md(generated)}). Re-runs recognise this issue by the hidden marker "
        f"below and do not open it again, even once closed: keep the `{SEARCH_LABEL}` "
        "label on it.</sub>",
        "",
        marker(digest),
    ]
    return "\n".join(lines)


def issue_drafts(
    model: Mapping[str, Any], priorities: Iterable[str], extra_labels: Sequence[str] = ()
) -> list[IssueDraft]:
    """One draft per action item of `priorities`, in the retrospective's order.

    Action items carry no evidence of their own: each is matched to the recommendation it
    was made from (same priority and title, as `build_action_items` makes them).
    """
    wanted = set(priorities)
    release = model["release"]["name"]
    by_title: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in model.get("recommendations", []):
        by_title.setdefault((rec["priority"], rec["title"]), []).append(rec)
    drafts = []
    for item in model.get("action_items", []):
        if item["priority"] not in wanted:
            continue
        matches = by_title.get((item["priority"], item["description"])) or [{}]
        rec = matches.pop(0) if len(matches) > 1 else matches[0]
        category = item.get("category") or rec.get("category")
        digest = fingerprint(
            release, item["priority"], category, rec.get("evidence"), item["description"]
        )
        title = _one_line(f"{item['priority']}: {item['description']}")
        if len(title) > MAX_TITLE_CHARS:
            title = title[: MAX_TITLE_CHARS - 1] + "…"
        labels = tuple(dict.fromkeys([item["priority"], SEARCH_LABEL, *extra_labels]))
        drafts.append(
            IssueDraft(digest, item["priority"], title, _body(model, item, rec, digest), labels)
        )
    return drafts


@dataclass(frozen=True)
class ExistingIssue:
    number: int | None
    url: str | None
    state: str | None


@dataclass(frozen=True)
class IssueOutcome:
    draft: IssueDraft
    status: Literal["created", "duplicate", "failed"]
    issue: ExistingIssue | None = None
    error: str | None = None


def _issue_list(response: HttpResponse, target: str) -> list[Mapping[str, Any]]:
    """The page's issues; anything else (an HTML error page, a JSON object) is an error,
    not an empty list — reading it as "no issues" would open twins."""
    try:
        issues = response.json()
    except ValueError:
        issues = None
    if not isinstance(issues, list) or not all(isinstance(i, Mapping) for i in issues):
        raise HttpError("the issue listing is not a JSON list of issues", target=target)
    return issues


def _issue(issue: Mapping[str, Any]) -> ExistingIssue:
    return ExistingIssue(issue.get("number"), issue.get("html_url"), issue.get("state"))


_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^",;]+)"?')


def _next_link(header: str | None) -> str | None:
    for url, rel in _LINK.findall(header or ""):
        if rel.strip() == "next":
            return url
    return None


def _same_origin(url: str, base: str) -> bool:
    left, right = urlsplit(url), urlsplit(base)
    return (left.scheme, left.netloc) == (right.scheme, right.netloc)


class GitHubIssues:
    """The issues API of one repository, authenticated with a token (never logged)."""

    def __init__(self, http: HttpClient, *, api_url: str, repository: str, token: str):
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.issues_url = f"{self.api_url}/repos/{repository}/issues"
        shown = redact_url(self.issues_url, keep_path=True)
        self.target = f"GitHub issues of {repository} ({shown})"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    def existing(self) -> dict[str, ExistingIssue]:
        """fingerprint -> issue, over every open and closed issue labelled `retrospective`.

        Follows the `Link: rel="next"` pages, but only on the API's own origin: the token
        goes with each request, and a Link header is server-controlled.
        """
        query = urlencode({"state": "all", "labels": SEARCH_LABEL, "per_page": 100})
        url: str | None = f"{self.issues_url}?{query}"
        found: dict[str, ExistingIssue] = {}
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if url is None:
                return found
            seen.add(url)
            response = self.http.request(
                "GET", url, target=self.target, headers=self._headers(), secrets=[self.token]
            )
            for issue in _issue_list(response, self.target):
                if "pull_request" in issue:  # the issues endpoint lists PRs too
                    continue
                for digest in MARKER_PATTERN.findall(issue.get("body") or ""):
                    found.setdefault(digest, _issue(issue))
            url = _next_link(response.header("link"))
            if url is not None and (url in seen or not _same_origin(url, self.api_url)):
                raise HttpError(
                    "the next-page link points to another host or loops; not following it "
                    "with the token",
                    target=self.target,
                )
        raise HttpError(
            f"more than {MAX_PAGES} pages of '{SEARCH_LABEL}' issues; not creating issues "
            "without having checked them all",
            target=self.target,
        )

    def create(self, draft: IssueDraft) -> ExistingIssue:
        """POST the issue. If a 5xx or timeout leaves it unclear whether GitHub created it,
        the listing is checked before retrying, so a retry cannot open a twin either."""
        landed: ExistingIssue | None = None

        def still_missing() -> bool:
            nonlocal landed
            landed = self.existing().get(draft.fingerprint)
            return landed is None

        try:
            response = self.http.request(
                "POST",
                self.issues_url,
                target=self.target,
                json_body=draft.payload(),
                headers=self._headers(),
                secrets=[self.token],
                before_retry=still_missing,
            )
        except RetryCancelledError:
            assert landed is not None
            return landed
        try:
            created = response.json()
        except ValueError:
            created = None
        return _issue(created if isinstance(created, Mapping) else {})

    def sync(self, drafts: Sequence[IssueDraft]) -> list[IssueOutcome]:
        """Create the drafts whose fingerprint has no issue yet; skip the others.

        A failed listing raises (creating blind could open twins); a failed create is
        recorded and the next draft still tried — one rejected issue (422) should not
        hold back the P0 after it.
        """
        existing = self.existing()
        outcomes = []
        for draft in drafts:
            if draft.fingerprint in existing:
                outcomes.append(IssueOutcome(draft, "duplicate", existing[draft.fingerprint]))
                continue
            try:
                issue = self.create(draft)
            except HttpError as error:
                outcomes.append(IssueOutcome(draft, "failed", error=str(error)))
                continue
            existing[draft.fingerprint] = issue
            outcomes.append(IssueOutcome(draft, "created", issue))
        return outcomes
