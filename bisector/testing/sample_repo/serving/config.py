"""A tiny reader for the flat, indented YAML the sample configs use (no dependencies)."""


def _scalar(text):
    text = text.strip().strip('"')
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def load(path):
    root = {}
    stack = [(-1, root)]
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            indent = len(raw) - len(raw.lstrip())
            key, _, value = raw.strip().partition(":")
            while stack[-1][0] >= indent:
                stack.pop()
            parent = stack[-1][1]
            if value.strip():
                parent[key] = _scalar(value)
            else:
                parent[key] = {}
                stack.append((indent, parent[key]))
    return root
