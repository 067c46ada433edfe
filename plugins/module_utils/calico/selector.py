# Copyright: kubescale.calico contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calico's selector grammar (libcalico-go ``lib/selector``): a parser, a validator and an evaluator."""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.kubescale.calico.plugins.module_utils.calico.fields import ValidationError

_TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<op>&&|\|\||==|!=|!|\(|\)|\{|\}|,)
    | (?P<str>"[^"]*"|'[^']*')
    | (?P<fn>(?:has|all|global)\s*\()
    | (?P<kw>not\s+in\b|in\b|contains\b|starts\s+with\b|ends\s+with\b)
    | (?P<label>[a-zA-Z0-9_./-]{1,512})
    )""", re.VERBOSE)


def _tokenize(text: str, field: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            where = len(text) - len(text[pos:].lstrip())  # the offending character, not the blank before it
            raise ValidationError(f"{field}: selector {text!r} has an unexpected character {text[where]!r} "
                                  f"at position {where}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "fn":
            value = value.replace(" ", "").rstrip("(")
        elif kind == "kw":
            value = " ".join(value.split())
        elif kind == "str":
            value = value[1:-1]
        tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, field: str) -> None:
        self.text, self.field = text, field
        self.tokens = _tokenize(text, field)
        self.pos = 0

    def fail(self, what: str):
        raise ValidationError(f"{self.field}: selector {self.text!r}: {what}")

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            self.fail(f"expected {value or kind} at token {self.pos + 1}")
        self.pos += 1
        return token[1]

    def parse(self):
        if not self.tokens:
            return ("all",)
        tree = self.parse_or()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r} at token {self.pos + 1}")
        return tree

    def parse_or(self):
        node = self.parse_and()
        while self.peek() == ("op", "||"):
            self.pos += 1
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_unary()
        while self.peek() == ("op", "&&"):
            self.pos += 1
            node = ("and", node, self.parse_unary())
        return node

    def parse_unary(self):
        token = self.peek()
        if token is None:
            self.fail("ends too early")
        if token == ("op", "!"):
            self.pos += 1
            return ("not", self.parse_unary())
        if token == ("op", "("):
            self.pos += 1
            node = self.parse_or()
            self.take("op", ")")
            return node
        if token[0] == "fn":
            self.pos += 1
            if token[1] == "has":
                label = self.take("label")
                self.take("op", ")")
                return ("has", label)
            self.take("op", ")")
            return (token[1],)
        if token[0] == "label":
            return self.parse_comparison()
        return self.fail(f"unexpected {token[1]!r} at token {self.pos + 1}")

    def parse_comparison(self):
        label = self.take("label")
        token = self.peek()
        if token in (("op", "=="), ("op", "!=")):
            self.pos += 1
            return (token[1], label, self.take("str"))
        if token is not None and token[0] == "kw":
            self.pos += 1
            if token[1] in ("in", "not in"):
                self.take("op", "{")
                values = []
                if self.peek() != ("op", "}"):
                    values.append(self.take("str"))
                    while self.peek() == ("op", ","):
                        self.pos += 1
                        values.append(self.take("str"))
                self.take("op", "}")
                return (token[1], label, frozenset(values))
            return (token[1], label, self.take("str"))
        return self.fail(f"label {label!r} must be followed by ==, !=, in, not in, contains, starts with or ends with")


def parse_selector(text: Any, field: str = "selector"):
    """Parse a Calico selector; raise ValidationError with the position of the problem."""
    if not isinstance(text, str):
        raise ValidationError(f"{field}: a selector must be a string")
    return _Parser(text, field).parse()


def selector_matches(tree, labels: dict[str, str]) -> bool:
    """Evaluate a parsed selector against a label set."""
    op = tree[0]
    if op in ("all", "global"):
        return True
    if op == "has":
        return tree[1] in labels
    if op == "not":
        return not selector_matches(tree[1], labels)
    if op == "and":
        return selector_matches(tree[1], labels) and selector_matches(tree[2], labels)
    if op == "or":
        return selector_matches(tree[1], labels) or selector_matches(tree[2], labels)
    value = labels.get(tree[1])
    if op == "==":
        return value == tree[2]
    if op == "!=":
        return value != tree[2]
    if op == "in":
        return value in tree[2]
    if op == "not in":
        return value not in tree[2]
    if value is None:
        return False
    return {"contains": tree[2] in value, "starts with": value.startswith(tree[2]),
            "ends with": value.endswith(tree[2])}[op]


def uses_global(tree) -> bool:
    """Whether a parsed selector calls global() (not merely has the text in a quoted value)."""
    if tree[0] == "global":
        return True
    return tree[0] in ("not", "and", "or") and any(uses_global(child) for child in tree[1:])


def validate_selector(text: Any, field: str) -> str:
    parse_selector(text, field)
    return text


# ---------------------------------------------------------------------------------------------
# Per-kind spec rules
# ---------------------------------------------------------------------------------------------
