"""What a browser would submit from a page's form, read from the HTML the server rendered: so
that "open the page and save without changing anything" is tested as a person does it."""

from __future__ import annotations

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    def __init__(self, form_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None
        self._selected = False
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self.inside = self.form_id is None or a.get("id") == self.form_id
            return
        if not self.inside or "disabled" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values[name] = a.get("value", "on")
            elif kind not in ("submit", "button", "reset", "file", "image"):
                self.values[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select, self._first_option, self._selected = name, None, False
        elif tag == "option" and self._select:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in a:
                self.values[self._select] = value
                self._selected = True
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            if not self._selected and self._first_option is not None:
                self.values[self._select] = self._first_option  # a browser submits the first
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            self.values[self._textarea] = text[1:] if text.startswith("\n") else text
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)


def form_values(html: str, form_id: str | None = None) -> dict[str, str]:
    """The fields a browser submits from the form `form_id` (or every form), unchanged."""
    reader = _FormReader(form_id)
    reader.feed(html)
    return reader.values
