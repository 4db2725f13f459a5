"""Preferred content: the expression language, want-get/want-drop, balanced placement.

Pure core (preferred-content.md): no I/O; the caller injects repository state, sizes and
options through `MatchContext`. Entry points:

* `parse_expression` / `format_expression`: text <-> tree (`ExpressionSyntaxError`).
* `PreferredContent(context)`: ``want_get``, ``want_get_verdict``, ``want_drop``,
  ``is_required``, ``preferred(repo)`` (configured / stable / fallback information).
"""

from annexproxy.preferred.balanced import GroupPicker, pick
from annexproxy.preferred.context import MatchContext, Repository
from annexproxy.preferred.evaluate import PreferredContent, RepoMatcher, Verdict
from annexproxy.preferred.parser import Expression, parse_expression
from annexproxy.preferred.printer import format_expression, format_matcher
from annexproxy.preferred.standard import STANDARD_GROUPS, standard_group_of
from annexproxy.preferred.terms import TrustLevel

__all__ = [
    "STANDARD_GROUPS",
    "Expression",
    "GroupPicker",
    "MatchContext",
    "PreferredContent",
    "RepoMatcher",
    "Repository",
    "TrustLevel",
    "Verdict",
    "format_expression",
    "format_matcher",
    "parse_expression",
    "pick",
    "standard_group_of",
]
