"""Every string the project shows has its Korean: the strings are extracted as `make messages` does
it (makemessages over the whole project, with the Makefile's own ignore list), into a copy of the
project so that the working tree is never touched, and merged into the Korean catalogue there; no
entry may be left untranslated or fuzzy. And the compiled catalogues (django.mo) are the current
.po files compiled: a translation added to a .po and not compiled never reaches a page."""

import gettext as stdlib_gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

BASE = Path(settings.BASE_DIR)
CATALOGUE = BASE / "locale" / "{lang}" / "LC_MESSAGES" / "django.po"


def make_messages_ignores() -> list[str]:
    """The --ignore patterns of `make messages`, read from the Makefile so the two cannot drift."""
    text = (BASE / "Makefile").read_text()
    line = re.search(r"^MESSAGES_IGNORE\s*:?=(.*)$", text, re.MULTILINE)
    assert line, "the Makefile's messages target lost its MESSAGES_IGNORE line"
    return re.findall(r"--ignore=(\S+)", line.group(1))


def copy_of_the_project(dest: Path, ignores: list[str]) -> None:
    top_level = {p for p in ignores if "/" in p}  # like static/vendor

    def skip(folder: str, names: list[str]) -> set[str]:
        rel = Path(folder).relative_to(BASE)
        return {
            n
            for n in names
            if n.startswith(".")
            or n in ignores
            or str(rel / n) in top_level
            or n in ("__pycache__", "media")
            or n.endswith(".mo")
        }

    shutil.copytree(BASE, dest, ignore=skip, symlinks=True)


def run(*args: str, cwd: Path) -> str:
    # As `make messages` runs it: manage.py with the project's own settings, not the tests'.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def merged_korean(tmp_path_factory) -> Path:
    """The Korean catalogue as `make messages` would leave it now (in a copy of the project)."""
    copy = tmp_path_factory.mktemp("messages") / "project"
    ignores = make_messages_ignores()
    copy_of_the_project(copy, ignores)
    run(
        sys.executable,
        "manage.py",
        "makemessages",
        "-l",
        "ko",
        *(f"--ignore={p}" for p in ignores),
        cwd=copy,
    )
    return copy / "locale" / "ko" / "LC_MESSAGES" / "django.po"


def entries(po_text: str) -> list[str]:
    """The entries of a .po text (blocks separated by blank lines), less its header."""
    blocks = [b.strip() for b in po_text.strip().split("\n\n") if b.strip()]
    return [b for b in blocks if not re.search(r'^msgid ""\s*$', b, re.MULTILINE) or "msgctxt" in b]


def test_make_messages_extracts_from_the_whole_project():
    ignores = make_messages_ignores()
    for folder in (".venv", "var", "tests", "bench", "test-artifacts", "node_modules"):
        assert folder in ignores
    # ... and nothing the users see: no app, no templates folder, is left out
    assert not {"payments", "templates", "orders", "vendors", "customers"} & set(ignores)


def test_every_string_shown_to_users_has_its_korean(merged_korean):
    missing = entries(
        run("msgattrib", "--untranslated", "--no-obsolete", str(merged_korean), cwd=BASE)
    )
    fuzzy = entries(run("msgattrib", "--only-fuzzy", "--no-obsolete", str(merged_korean), cwd=BASE))
    report = "\n\n".join(missing + fuzzy)
    assert not missing and not fuzzy, (
        f"{len(missing)} string(s) without Korean and {len(fuzzy)} fuzzy (a guess, unchecked) in "
        f"locale/ko/LC_MESSAGES/django.po after `make messages`; translate them there and "
        f"compile:\n\n{report}"
    )


def test_the_extraction_finds_the_payments_templates(merged_korean):
    # The vendor's money pages were once skipped (an ignore of "payments" also skipped
    # templates/payments/): their strings must be in the catalogue now.
    text = merged_korean.read_text()
    assert "templates/payments/earnings.html" in text
    assert "payments/statements.py" in text
    assert 'msgid "Owed to you now"' in text


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_the_compiled_catalogue_is_the_current_po(lang, tmp_path):
    po = Path(str(CATALOGUE).format(lang=lang))
    fresh = tmp_path / "django.mo"
    run("msgfmt", "--check-format", "-o", str(fresh), str(po), cwd=BASE)

    def catalogue(path: Path) -> dict:
        with path.open("rb") as fh:
            return stdlib_gettext.GNUTranslations(fh)._catalog

    compiled, current = catalogue(po.with_suffix(".mo")), catalogue(fresh)
    stale = sorted(
        str(key)
        for key in compiled.keys() | current.keys()
        if compiled.get(key) != current.get(key)
    )
    assert not stale, (
        f"locale/{lang}/LC_MESSAGES/django.mo is not compiled from the current django.po "
        f"(run `make messages`); these differ: {stale[:40]}"
    )
