"""What every page must pass in the browser tests: it fits the viewport, axe-core finds no critical or serious
accessibility violation (WCAG 2.1 A and AA rules), and nothing was refused by the Content-Security-Policy or failed in
a script."""

from __future__ import annotations

AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}


def axe_violations(page) -> list[str]:
    """Critical and serious violations on the page as it is now, one line each with the first offending elements."""
    found = page.evaluate(
        """async (options) => {
            const result = await window.axe.run(document, options);
            return result.violations
                .filter(v => v.impact === "critical" || v.impact === "serious")
                .map(v => v.id + " (" + v.impact + "): " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "));
        }""",
        AXE_OPTIONS,
    )
    return list(found)


def overflow(page) -> int:
    """How many pixels the page is wider than the viewport (0 when it fits)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def overflowing(page) -> list[str]:
    """The elements that stick out past the viewport's right edge, outside any box that scrolls or clips them."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const clipped = (el) => {
                for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                    if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
                }
                return false;
            };
            return Array.from(document.body.querySelectorAll("*"))
                .filter(el => el.getBoundingClientRect().right > width + 1 && !clipped(el))
                .slice(0, 5)
                .map(el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + " " + el.getAttribute("class"));
        }"""
    )


def script_errors(page, *, allow_missing: bool = False) -> list[str]:
    """Console errors, CSP refusals included. A page that answers 404 on purpose logs its own status: allowed then."""
    errors = list(page.console_errors)
    if allow_missing:
        missing = "Failed to load resource: the server responded with a status of 404"
        errors = [e for e in errors if not e.startswith(missing)]
    return errors


def check_page(page, *, allow_missing: bool = False) -> list[str]:
    """Every problem of the page as it is now; empty when it passes."""
    problems = [f"axe: {v}" for v in axe_violations(page)]
    wider = overflow(page)
    if wider > 0:
        problems.append(f"{wider}px wider than the {page.viewport_size['width']}px viewport: {overflowing(page)}")
    problems += [f"console: {e}" for e in script_errors(page, allow_missing=allow_missing)]
    return problems
