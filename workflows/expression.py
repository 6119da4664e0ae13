"""A small, safe condition language for workflow definitions; never `eval`.

Grammar (case-sensitive keywords):
    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | cmp
    cmp     := value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") value)?
    value   := NUMBER | STRING | "true" | "false" | NAME | "[" value ("," value)* "]" | "(" expr ")"
Names are document fields a definition may test (see FIELDS).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from workflows.errors import ValidationFailed

# Fields a condition may read, with their Vietnamese meaning (shown in the editor).
FIELDS: dict[str, str] = {
    "direction": "Loại sổ: 'incoming', 'outgoing', 'internal'",
    "doc_type": "Viết tắt loại văn bản, ví dụ 'QĐ'; công văn là ''",
    "urgency": "Độ khẩn: 0 Thường, 1 Khẩn, 2 Thượng khẩn, 3 Hỏa tốc",
    "secrecy": "Độ mật: 0 Thường, 1 Mật, 2 Tối mật, 3 Tuyệt mật",
    "unit": "Viết tắt đơn vị soạn thảo/chủ trì, ví dụ 'QLTM'",
    "steps_done": "Số bước trình ký đã xong",
    "steps_total": "Tổng số bước trình ký",
    "has_file": "Đã có tệp PDF",
    "pages": "Số trang",
    "open_assignments": "Số phân công xử lý chưa hoàn thành",
    "has_number": "Đã cấp số",
}

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)
MAX_LENGTH = 500


class ConditionError(ValidationFailed):
    code = "invalid_condition"


@dataclass(frozen=True)
class Token:
    kind: str
    value: Any
    pos: int


def _tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            raise ConditionError(f"Điều kiện có ký tự không hợp lệ ở vị trí {pos + 1}.")
        kind = match.lastgroup or ""
        raw = match.group(kind)
        if kind == "num":
            tokens.append(Token("lit", float(raw) if "." in raw else int(raw), match.start(kind)))
        elif kind == "str":
            tokens.append(Token("lit", raw[1:-1].replace("\\'", "'").replace('\\"', '"'), pos))
        elif kind == "name" and raw in ("and", "or", "not", "in"):
            tokens.append(Token(raw, raw, pos))
        elif kind == "name" and raw in ("true", "false"):
            tokens.append(Token("lit", raw == "true", pos))
        else:
            tokens.append(Token(kind, raw, pos))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self, *kinds: str) -> Token | None:
        tok = self.tokens[self.i] if self.i < len(self.tokens) else None
        if tok and (tok.kind in kinds or (tok.kind == "op" and tok.value in kinds)):
            return tok
        return None

    def take(self, *kinds: str) -> Token:
        tok = self.peek(*kinds)
        if tok is None:
            where = self.tokens[self.i].pos + 1 if self.i < len(self.tokens) else "cuối"
            raise ConditionError(f"Điều kiện sai cú pháp (vị trí {where}).")
        self.i += 1
        return tok

    def parse(self) -> tuple:
        node = self.or_()
        if self.i != len(self.tokens):
            raise ConditionError(f"Điều kiện sai cú pháp (vị trí {self.tokens[self.i].pos + 1}).")
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.peek("or"):
            self.take("or")
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.peek("and"):
            self.take("and")
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.peek("not"):
            self.take("not")
            return ("not", self.not_())
        return self.cmp()

    def cmp(self) -> tuple:
        left = self.value()
        if tok := self.peek("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            return ("cmp", tok.value, left, self.value())
        if self.peek("in"):
            self.take("in")
            return ("cmp", "in", left, self.value())
        if (
            self.peek("not")
            and self.i + 1 < len(self.tokens)
            and self.tokens[self.i + 1].kind == "in"
        ):
            self.i += 2
            return ("cmp", "not in", left, self.value())
        return left

    def value(self) -> tuple:
        if tok := self.peek("lit"):
            self.i += 1
            return ("lit", tok.value)
        if tok := self.peek("name"):
            self.i += 1
            if tok.value not in FIELDS:
                raise ConditionError(
                    f"Điều kiện dùng trường không tồn tại: '{tok.value}'. "
                    f"Các trường được dùng: {', '.join(FIELDS)}."
                )
            return ("name", tok.value)
        if self.peek("["):
            self.take("[")
            items = [self.value()]
            while self.peek(","):
                self.take(",")
                items.append(self.value())
            self.take("]")
            return ("list", items)
        self.take("(")
        node = self.or_()
        self.take(")")
        return node


def parse(text: str) -> tuple | None:
    """Parse a condition; None for an empty one. Raise ConditionError with a Vietnamese message."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"Điều kiện dài quá {MAX_LENGTH} ký tự.")
    return _Parser(_tokenize(text)).parse()


def _eval(node: tuple, ctx: dict[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "name":
        return ctx.get(node[1])
    if kind == "list":
        return [_eval(n, ctx) for n in node[1]]
    if kind == "not":
        return not _eval(node[1], ctx)
    if kind == "and":
        return bool(_eval(node[1], ctx)) and bool(_eval(node[2], ctx))
    if kind == "or":
        return bool(_eval(node[1], ctx)) or bool(_eval(node[2], ctx))
    op, left, right = node[1], _eval(node[2], ctx), _eval(node[3], ctx)
    try:
        if op == "==":
            return left == right
        if op == "!=":
            return left != right
        if op == "in":
            return left in right
        if op == "not in":
            return left not in right
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError:
        return False  # comparing a missing value is false, never an error at run time


def evaluate(text: str, ctx: dict[str, Any]) -> bool:
    """Evaluate a condition against the field values in `ctx`; an empty one is true."""
    tree = parse(text)
    return True if tree is None else bool(_eval(tree, ctx))
