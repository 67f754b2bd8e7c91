"""Chart pages in Chromium: how long until their charts are drawn, cold and warm, and how much JavaScript travels.

    .venv/bin/python benchmarks/pages.py          # a scratch registry with the demo models (~2 min to train them)
    SECRET_KEY="$(cat var/secret_key)" .venv/bin/python benchmarks/pages.py --url http://127.0.0.1:8000 \
        --user admin --password "$(cat var/admin_password)"     # the registry `make run` serves, demo data in var/

Serves the registry as `make run` does (gunicorn, collected static files with whitenoise's brotli/gzip copies), signs in
in headless Chromium and opens each chart page three times in a fresh browser context (cold: empty cache) and three
times more in the same context (warm: scripts from the cache). For each it prints, from the start of navigation:
- "in view": the charts on the first screen drawn (the rest wait until they are scrolled near, as shipped);
- "all": every chart on the page drawn, forced right after the load event (what a reader who jumps to the bottom waits);
- the JavaScript transferred (compressed) on the cold load.
Targets from the workbench issue: the compare page with four builds has all charts drawn in ≤ 1.0 s warm and ≤ 1.5 s
cold, with ≤ 400 KB of JavaScript transferred.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._server import free_port, manage  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TARGETS = {"compare": (1000, 1500, 400)}  # warm ms, cold ms, JS KB

# The charts on screen are drawn; resolves with performance.now() (ms since navigation started) when they are.
IN_VIEW = """() => new Promise(resolve => {
  const check = () => {
    const charts = [...document.querySelectorAll('[data-figure]')].filter(el => {
      const box = el.getBoundingClientRect();
      return box.top < window.innerHeight && box.bottom > 0;
    });
    if (charts.every(el => el.classList.contains('js-plotly-plot'))) resolve(performance.now());
    else requestAnimationFrame(check);
  };
  check();
})"""
# Draw every chart now and resolve when Plotly has finished them all.
ALL = """() => new Promise(resolve => {
  const charts = [...document.querySelectorAll('[data-figure]')];
  charts.forEach(el => window.RegistryCharts.drawNow(el));
  const check = () => {
    if (charts.every(el => el.classList.contains('js-plotly-plot'))) resolve([performance.now(), charts.length]);
    else requestAnimationFrame(check);
  };
  check();
})"""
JS_BYTES = """() => performance.getEntriesByType('resource')
  .filter(e => e.initiatorType === 'script' || e.name.endsWith('.js'))
  .reduce((sum, e) => sum + e.transferSize, 0)"""


def chart_pages(env: dict) -> dict[str, str]:
    """The demo's chart pages: four builds compared, a model, a version, a run, a metric's history, a dataset."""
    code = """
from registry.catalog.models import ModelVersion
from registry.tracking.models import MetricSeries, RunInput
versions = list(ModelVersion.objects.filter(model__name='digits-recognizer').order_by('-version')[:4])
series = MetricSeries.objects.filter(count__gt=1, run__experiment__name='digits-recognizer').first()
run_input = RunInput.objects.filter(run__experiment__name='digits-recognizer').first()
print(','.join(f'{v.model.name}:{v.version}' for v in versions))
print(versions[0].version, series.run_id, series.key, run_input.dataset_id)
"""
    refs, line = manage(env, "shell", "-c", code).strip().splitlines()[-2:]
    version, run_id, key, dataset_id = line.split()
    return {
        "compare": f"/compare/?versions={refs}",
        "model": "/models/digits-recognizer/",
        "version": f"/models/digits-recognizer/versions/{version}/",
        "run": f"/runs/{run_id}/",
        "metric history": f"/runs/{run_id}/metrics/{key}/",
        "dataset": f"/datasets/{dataset_id}/",
    }


def measure(browser, base: str, user: str, password: str, path: str, rounds: int) -> dict:
    def signed_in_context():
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(base + "/login/")
        page.fill("#id_username", user)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        return context, page

    cold_view, cold_all, warm_view, warm_all, js = [], [], [], [], []
    charts = 0
    for _ in range(rounds):
        context, page = signed_in_context()
        page.goto(base + path, wait_until="commit")
        cold_view.append(page.evaluate(IN_VIEW))
        page.wait_for_load_state("load")
        done, charts = page.evaluate(ALL)
        cold_all.append(done)
        js.append(page.evaluate(JS_BYTES))
        for _ in range(1):  # the same context again: scripts come from the browser's cache
            page.goto(base + path, wait_until="commit")
            warm_view.append(page.evaluate(IN_VIEW))
            page.wait_for_load_state("load")
            warm_all.append(page.evaluate(ALL)[0])
        context.close()
    return {
        "charts": charts,
        "cold_view": statistics.median(cold_view),
        "cold_all": statistics.median(cold_all),
        "warm_view": statistics.median(warm_view),
        "warm_all": statistics.median(warm_all),
        "js_kb": statistics.median(js) / 1000,
    }


def serve_demo(var_dir: str):
    env = {
        **os.environ,
        "SECRET_KEY": "benchmark-secret-key",
        "REGISTRY_HTTPS": "false",
        "DEBUG": "false",
        "REGISTRY_VAR_DIR": var_dir,
        "STATIC_ROOT": str(Path(var_dir) / "static"),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    print("training the demo models on a scratch registry…", flush=True)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")
    manage(env, "demo", "--if-empty")
    code = "from django.contrib.auth.models import User; u, _ = User.objects.get_or_create(username='bench')\n"
    code += "u.set_password('bench-pass-1'); u.is_superuser = True; u.save()"
    manage(env, "shell", "-c", code)
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "registry.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if requests.get(url + "/healthz", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    return proc, url, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running registry with the demo models (default: start a scratch one)")
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-pass-1")
    parser.add_argument("--var-dir", help="for the scratch registry (default: a temporary folder)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    proc = None
    if args.url:
        base = args.url.rstrip("/")
        env = {**os.environ}
    else:
        proc, base, env = serve_demo(args.var_dir or tempfile.mkdtemp(prefix="registry-pages-"))
    try:
        pages = chart_pages(env)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"), args=CHROMIUM_ARGS
            )
            print(
                f"{'page':<16}{'charts':>7}{'cold in view':>14}{'cold all':>10}{'warm in view':>14}{'warm all':>10}"
                f"{'JS (cold)':>11}  target"
            )
            for name, path in pages.items():
                m = measure(browser, base, args.user, args.password, path, args.rounds)
                target = ""
                if name in TARGETS:
                    warm, cold, kb = TARGETS[name]
                    ok = m["warm_all"] <= warm and m["cold_all"] <= cold and m["js_kb"] <= kb
                    target = f"all ≤ {warm} ms warm, ≤ {cold} ms cold, JS ≤ {kb} KB: {'met' if ok else 'MISSED'}"
                print(
                    f"{name:<16}{m['charts']:>7}{m['cold_view']:>11.0f} ms{m['cold_all']:>7.0f} ms"
                    f"{m['warm_view']:>11.0f} ms{m['warm_all']:>7.0f} ms{m['js_kb']:>8.0f} KB  {target}",
                    flush=True,
                )
            browser.close()
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=20)


if __name__ == "__main__":
    main()
