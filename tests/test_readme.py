"""The README's set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(bash \.ci/setup && [^\n]+)\n```", text)


def test_readme_has_the_two_setup_commands() -> None:
    commands = readme_commands()
    assert commands[0] == "bash .ci/setup && .venv/bin/vaebin-rs demo"
    assert commands[1] == "bash .ci/setup && .venv/bin/python -m pytest -q"


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


# --- the README's benchmark figures are RESULTS.md's -------------------------------------------

# What counts as a figure in a README bullet: per-seed triples ("14 / 14 / 14"), decimals (ARI,
# ratios, speeds; not version numbers such as 5.0.4), and whole numbers with a unit or before
# "near-complete".
FIGURE = re.compile(
    r"\d+ / \d+ / \d+"
    r"|(?<![\d.,])\d[\d,]*\.\d+(?!\d|\.\d)"
    r"|(?<![\d.,])\d[\d,]*(?= ?(?:MB\b|GB\b|MB/s|Mbp/s|x\b| near-complete))"
)
CITATION = re.compile(r"\(RESULTS\.md: ((?:\"[^\"]+\"(?:; )?)+)\)")


def benchmark_bullets(readme: str) -> list[str]:
    """The bullets of the README's Benchmarks section, continuation lines joined."""
    section = readme.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]
    bullets: list[str] = []
    for line in section.splitlines():
        if line.startswith("- "):
            bullets.append(line[2:])
        elif line.startswith("  ") and bullets:
            bullets[-1] += " " + line.strip()
    return bullets


def results_section(results: str, title: str) -> str | None:
    """The text under the `## title` heading of RESULTS.md, its subsections included."""
    parts = re.split(r"^## ", results, flags=re.MULTILINE)
    for part in parts[1:]:
        heading, _, body = part.partition("\n")
        if heading.strip() == title:
            return body
    return None


def stale_figures(readme: str, results: str) -> list[str]:
    """Every README benchmark figure that its cited RESULTS.md sections do not hold."""
    problems = []
    for bullet in benchmark_bullets(readme):
        citation = CITATION.search(bullet)
        if citation is None:
            problems.append(f'no (RESULTS.md: "section") citation: {bullet[:60]}...')
            continue
        titles = re.findall(r"\"([^\"]+)\"", citation.group(1))
        sections = [results_section(results, title) for title in titles]
        for title, text in zip(titles, sections, strict=True):
            if text is None:
                problems.append(f"RESULTS.md has no section {title!r}")
        cited = "\n".join(text for text in sections if text)
        for figure in FIGURE.findall(bullet[: citation.start()]):
            pattern = r"(?<![\d.,])" + re.escape(figure) + r"(?![\d]|\.\d)"
            if not re.search(pattern, cited):
                problems.append(f"{figure!r} is not in {', '.join(titles)}")
    return problems


def test_readme_benchmark_figures_are_those_of_results() -> None:
    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    assert len(benchmark_bullets(readme)) >= 7
    assert stale_figures(readme, results) == []


def test_a_stale_readme_figure_is_caught() -> None:
    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    # The mismatch the issue found: README "13 with every seed" where RESULTS.md had 14 / 14 / 14.
    stale = readme.replace("vaebin-rs 14 / 14 / 14", "vaebin-rs 13 / 13 / 12", 1)
    assert stale != readme
    assert stale_figures(stale, results) == [
        "'13 / 13 / 12' is not in Binning on real genomes, Binning on real genomes, one sample"
    ]
    wrong_ratio = readme.replace("0.13 of VAMB's wall time", "0.12 of VAMB's wall time", 1)
    assert wrong_ratio != readme and len(stale_figures(wrong_ratio, results)) == 1
    uncited = readme.replace(' (RESULTS.md: "Coverage")', "", 1)
    assert uncited != readme and stale_figures(uncited, results)[0].startswith("no (RESULTS.md")
