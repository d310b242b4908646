"""The shape of the code, read from the source (docs/architecture.md, "Layers").

Every .py file of the project's apps is parsed with `ast`; every import counts, at module level
or inside a function, and so does a module named by a literal string to `include()` or
`import_module()`. Nothing is imported, so a violation is reported even in a module that would
fail to load.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The project's apps, lowest first: each may import itself and the apps before it, never one
# after it. A new app goes where it belongs in this order (and in INSTALLED_APPS).
LAYERS = [
    # Folders, records, configurations, crypto, access, audit trail, accounts, the `pam` frame.
    "vault",
    # Rotation settings, the engine and its methods, schedules, the AWS client, gateways.
    "rotation",
    # Events out of the audit trail (the outbox): derived from vault's audit events.
    "events",
    # Mail to people who asked for an event; outbox consumer.
    "notifications",
    # Signed deliveries to receivers' URLs; outbox consumer.
    "webhooks",
    # Prometheus metrics read from the database.
    "metrics",
    # The AWS Secrets Manager-compatible API for applications' client credentials.
    "secretsapi",
]

# Third-party modules (and everything under them) that only the named project files may import.
ONLY_HERE = {
    # One module per external integration: every botocore exception becomes AwsRefused or
    # AwsTransient in one place, and no other code can call AWS around it.
    "boto3": {"rotation/aws.py"},
    "botocore": {"rotation/aws.py"},
    # The only code that touches the cipher: secret columns go through get_secret/set_secret.
    "cryptography": {"vault/crypto.py"},
    # The only code that enqueues django-q2 tasks (async_task, schedule, ... live in
    # django_q.tasks; a broker enqueues directly): task arguments stay ids, the cluster is
    # the gateway's, and rotation/taskguard.py's ALLOWED_TASKS stays the whole list.
    "django_q.tasks": {"rotation/dispatch.py"},
    "django_q.brokers": {"rotation/dispatch.py"},
    # Events out: whatever leaves the vault because something happened (mail, webhooks) is an
    # outbox consumer in an app above rotation, delivered by the workers with retries; no
    # code sends it inline. Consumers that do will be the files listed here.
    "smtplib": set(),
    "django.core.mail": {"notifications/mail.py", "notifications/backends.py"},
    "urllib.request": {"webhooks/services.py"},
    "http.client": set(),
    # Single sign-on's calls to the identity provider (discovery, keys) are part of signing
    # in, not events out; mozilla-django-oidc makes the others with requests too.
    "requests": {"vault/oidc.py"},
    "httpx": set(),
}

# Calls whose literal string argument names a module they load.
LOADING_CALLS = {"include", "import_module", "__import__"}


@dataclass(frozen=True)
class Import:
    file: str  # relative to the repository, e.g. "vault/urls.py"
    line: int
    source: str  # the importing module, e.g. "vault.urls"
    names: tuple[
        str, ...
    ]  # what it may load: "a.b" for `import a.b`; "a" and "a.b" for `from a import b`
    text: str  # the statement as written

    def where(self) -> str:
        return f"{self.file}:{self.line} `{self.text}`"


def project_files() -> dict[str, Path]:
    """Module name -> file, for every .py file of every app in LAYERS."""
    modules = {}
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_in(source: str, module: str, file: str, *, package: bool = False) -> list[Import]:
    """Every import in `source`, the text of `module` (`package`: it is an __init__.py)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=file)):
        if isinstance(node, ast.Import):
            names = tuple(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = (base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*"))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) in LOADING_CALLS
        ):
            names = (node.args[0].value,)
        else:
            continue
        text = " ".join((ast.get_source_segment(source, node) or "").split())
        text = text if len(text) <= 100 else f"{text[:97]}..."
        found.append(Import(file, node.lineno, module, names, text))
    return sorted(found, key=lambda i: i.line)


@functools.cache
def all_imports() -> tuple[Import, ...]:
    """Read once per test run: every test here looks at the same files."""
    return tuple(
        i
        for module, path in project_files().items()
        for i in imports_in(
            path.read_text(encoding="utf-8"),
            module,
            path.relative_to(ROOT).as_posix(),
            package=path.name == "__init__.py",
        )
    )


def app_of(name: str) -> str | None:
    top = name.partition(".")[0]
    return top if top in LAYERS else None


def test_the_layers_are_the_installed_apps_in_order(settings):
    installed = [
        entry.partition(".")[0]
        for entry in settings.INSTALLED_APPS
        if (ROOT / entry.partition(".")[0] / "apps.py").exists()
    ]
    installed = list(dict.fromkeys(installed))
    assert [app for app in LAYERS if app in installed] == installed, (
        f"INSTALLED_APPS has the project's apps {installed}; LAYERS in {__file__} must list "
        "each of them, lowest first, in the same order"
    )


def test_an_app_imports_only_itself_and_the_apps_below_it():
    problems = []
    for imp in all_imports():
        own = LAYERS.index(app_of(imp.source))
        for name in imp.names:
            target = app_of(name)
            if target is not None and LAYERS.index(target) > own:
                allowed = ", ".join(LAYERS[: own + 1])
                problems.append(
                    f"{imp.where()}: {app_of(imp.source)} imports {name} "
                    f"({target} is above it; {app_of(imp.source)} may import only {allowed})"
                )
                break
    assert not problems, "imports against the layers:\n" + "\n".join(problems)


@pytest.mark.parametrize("library", sorted(ONLY_HERE))
def test_a_library_is_imported_only_where_it_is_allowed(library):
    allowed = ONLY_HERE[library]
    problems = [
        f"{imp.where()}: imports {library} (allowed only in {', '.join(sorted(allowed))})"
        for imp in all_imports()
        if imp.file not in allowed
        and any(name == library or name.startswith(f"{library}.") for name in imp.names)
    ]
    assert not problems, "\n".join(problems)


def module_graph() -> dict[str, dict[str, Import]]:
    """Project module -> {project module it imports: the first import that does}."""
    modules = project_files()
    graph: dict[str, dict[str, Import]] = {m: {} for m in modules}
    for imp in all_imports():
        for name in imp.names:
            # The most specific project module the name loads (`from vault import views` loads
            # vault.views; `from vault.models import PamUser` loads vault.models).
            parts = name.split(".")
            target = next(
                (
                    ".".join(parts[:n])
                    for n in range(len(parts), 0, -1)
                    if ".".join(parts[:n]) in modules
                ),
                None,
            )
            if target is not None and target != imp.source:
                graph[imp.source].setdefault(target, imp)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles_between_modules():
    graph = module_graph()
    problems = []
    for component in cycles(graph):
        members = set(component)
        edges = [
            f"    {imp.where()} -> {target}"
            for source in component
            for target, imp in sorted(graph[source].items())
            if target in members
        ]
        problems.append(f"cycle between {', '.join(component)}:\n" + "\n".join(edges))
    assert not problems, (
        "import cycles (module-level and function-level imports both count; move the shared "
        "piece to a module both import instead of importing lazily):\n" + "\n".join(problems)
    )


def test_the_checks_see_what_they_look_for():
    """The reader finds imports inside functions, relative imports and string loads, and the
    cycle finder finds a cycle of three (and not the module that only points into it)."""
    source = (
        "def f():\n"
        "    from rotation import services\n"
        "    from . import importer\n"
        "    include('rotation.urls')\n"
    )
    found = imports_in(source, "vault.cli", "vault/cli.py")
    assert [i.names for i in found] == [
        ("rotation", "rotation.services"),
        ("vault", "vault.importer"),
        ("rotation.urls",),
    ]
    graph = {"a": {"b": None}, "b": {"c": None}, "c": {"a": None}, "d": {"a": None}}
    assert cycles(graph) == [["a", "b", "c"]]
