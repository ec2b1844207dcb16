"""Generate the seed data: synthetic scam indicators and scam reports, the same on every run.

    python infrastructure/seed_data/generate.py      # rewrites indicators.csv and reports.jsonl

Everything here is made up from common scam patterns (look-alike domains on cheap TLDs, toll-road
smishing, 555-01xx numbers, which are reserved for fiction). Report URLs use the reserved
`.example` TLD and IP addresses come from the documentation ranges. No brand's legitimate domain is
ever an indicator: `LEGITIMATE` is checked before anything is written.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261127
START, END = date(2023, 1, 1), date(2025, 11, 20)

LEGITIMATE = {
    "paypal.com", "usps.com", "ups.com", "fedex.com", "dhl.com", "royalmail.com", "chase.com",
    "wellsfargo.com", "bankofamerica.com", "citi.com", "hsbc.com", "barclays.co.uk", "irs.gov",
    "coinbase.com", "binance.com", "microsoft.com", "apple.com", "norton.com", "mcafee.com",
    "amazon.com", "e-zpassny.com", "ezpassnj.com", "sunpass.com", "bayareafastrak.org",
    "txtag.org", "thetollroads.com", "illinoistollway.com", "peachpass.com", "mygoodtogo.com",
}  # fmt: skip

# category -> (lure words for domain names, brand-like tokens, TLDs)
LURES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "parcel_delivery": (
        ["redelivery", "parcel", "tracking", "reschedule", "package", "delivery", "customs-fee"],
        ["usps", "ups", "fedex", "dhl", "royalmail", "evri", "parcelforce"],
        ["top", "xyz", "icu", "info", "online", "site", "shop"],
    ),
    "bank_impersonation": (
        ["secure", "verify", "alert", "login", "unlock", "account", "online-banking"],
        ["paypa1", "chase", "wellsfargo", "bofa", "citi", "hsbc", "barclays"],
        ["com", "net", "info", "support", "live", "online"],
    ),
    "irs_impersonation": (
        ["refund", "tax-refund", "payment", "audit", "stimulus", "rebate"],
        ["irs", "irs-gov", "treasury", "taxservice", "federal-tax"],
        ["info", "org", "us", "online", "site"],
    ),
    "crypto_investment": (
        ["profit", "invest", "mining", "airdrop", "yield", "trade", "wallet-sync"],
        ["c0inbase", "blnance", "bitpro", "cryptomax", "etherfund", "usdt-vault"],
        ["io", "pro", "finance", "app", "cc", "vip"],
    ),
    "tech_support": (
        ["helpdesk", "support", "virus-alert", "fix", "care", "security-warning"],
        ["micros0ft", "windows", "apple-id", "norton", "mcafee", "geeksquad"],
        ["com", "net", "support", "online", "tech"],
    ),
    "prize_lottery": (
        ["winner", "prize", "sweepstakes", "jackpot", "claim", "lucky-draw", "reward"],
        ["megamillions", "pch", "global-lotto", "giftcard", "walmart-gift", "costco-rewards"],
        ["win", "top", "xyz", "club", "info"],
    ),
    "romance": (
        ["love", "match", "date", "hearts", "singles", "soulmate"],
        ["true", "forever", "military", "sweet", "golden"],
        ["com", "net", "club", "online", "life"],
    ),
    "job_offer": (
        ["remote-jobs", "hiring", "careers", "work-from-home", "task-earn", "recruit"],
        ["amaz0n", "staffing", "globaltalent", "easypay", "quickhire", "taskhub"],
        ["work", "jobs", "online", "xyz", "site"],
    ),
    "toll_road": (
        ["toll", "tolls", "pay", "unpaid", "balance", "invoice", "services"],
        ["ezpass", "e-zpass", "sunpass", "fastrak", "txtag", "ezdrive", "peachpass", "ipass"],
        ["vip", "xin", "top", "cc", "info", "lat", "com"],
    ),
}
CATEGORIES = list(LURES)
# Patterns everyone in the field has seen; always present.
CLASSICS = {
    "usps-redelivery.top": "parcel_delivery",
    "paypa1-secure.com": "bank_impersonation",
    "e-zpass-toll.vip": "toll_road",
    "sunpass-unpaid.xin": "toll_road",
    "fastrak-tolls.top": "toll_road",
    "irs-gov-refund.info": "irs_impersonation",
    "micros0ft-helpdesk.support": "tech_support",
}
TOLL_FREE = ["800", "833", "844", "855", "866", "877", "888"]
AREA_CODES = ["202", "213", "305", "312", "347", "415", "469", "646", "702", "786", "929"]
LOCAL_PARTS = [
    "support",
    "claims",
    "refunds",
    "billing",
    "noreply",
    "security",
    "hr",
    "agent",
    "verify",
    "notice",
]
LOCAL_PARTS += ["helpdesk", "payments", "winner", "recruiter", "care"]
PATHS = [
    "/track?id={n}",
    "/login/verify",
    "/pay/invoice/{n}",
    "/account/unlock?ref={n}",
    "/claim/{n}",
]
PATHS += ["/refund/status", "/toll/pay?plate={n}", "/support/ticket/{n}"]


def seen_window(rng: random.Random) -> tuple[date, date]:
    first = START + timedelta(days=rng.randrange((END - START).days))
    last = min(END, first + timedelta(days=int(rng.expovariate(1 / 90))))
    return first, last


def report_count(rng: random.Random) -> int:
    # Heavy-tailed, as in real report feeds: most indicators are reported a few times.
    return min(5000, int(rng.paretovariate(1.1) * 2))


def domains(rng: random.Random) -> dict[str, str]:
    found = dict(CLASSICS)
    while len(found) < 480:
        category = rng.choice(CATEGORIES)
        words, brands, tlds = LURES[category]
        brand, word, tld = rng.choice(brands), rng.choice(words), rng.choice(tlds)
        name = rng.choice([f"{brand}-{word}", f"{brand}{word}", f"{word}-{brand}"])
        if rng.random() < 0.15:
            name += f"-{rng.randrange(2, 99)}"
        if rng.random() < 0.08:
            name = f"{rng.choice(['my', 'go', 'secure', 'www2'])}.{name}"
        domain = f"{name}.{tld}".replace("--", "-")
        if domain not in LEGITIMATE:
            found.setdefault(domain, category)
    return found


def phones(rng: random.Random) -> dict[str, str]:
    found: dict[str, str] = {}
    while len(found) < 320:
        roll = rng.random()
        if roll < 0.65:
            number = f"+1{rng.choice(TOLL_FREE)}55501{rng.randrange(100):02d}"
        elif roll < 0.9:
            number = f"+1{rng.choice(AREA_CODES)}55501{rng.randrange(100):02d}"
        else:
            number = f"+61491570{rng.randrange(100, 200)}"  # Australia's range for fiction
        found.setdefault(number, rng.choice(CATEGORIES))
    return found


def rows(rng: random.Random) -> list[dict[str, object]]:
    indicators: list[tuple[str, str, str]] = []
    by_domain = domains(rng)
    indicators += [("domain", d, c) for d, c in by_domain.items()]
    indicators += [("phone", p, c) for p, c in phones(rng).items()]
    names = sorted(by_domain)
    emails: dict[str, str] = {}
    while len(emails) < 200:
        domain = rng.choice(names)
        local = rng.choice(LOCAL_PARTS) + rng.choice(["", ".", "-", "_"]) * rng.randrange(2)
        local = local.rstrip(".-_") + (str(rng.randrange(10, 999)) if rng.random() < 0.3 else "")
        emails.setdefault(f"{local}@{domain.removeprefix('www2.')}", by_domain[domain])
    indicators += [("email", e, c) for e, c in emails.items()]
    urls: dict[str, str] = {}
    while len(urls) < 220:
        domain = rng.choice(names)
        host = domain if rng.random() < 0.9 else f"203.0.113.{rng.randrange(1, 255)}"
        path = rng.choice(PATHS).format(n=rng.randrange(10**5, 10**9))
        scheme = rng.choice(["https", "https", "http"])
        urls.setdefault(f"{scheme}://{host}{path}", by_domain[domain])
    indicators += [("url", u, c) for u, c in urls.items()]
    out = []
    for kind, value, category in indicators:
        first, last = seen_window(rng)
        out.append({"kind": kind, "value": value, "category": category,
                    "report_count": report_count(rng), "first_seen": first.isoformat(),
                    "last_seen": last.isoformat(), "source": "seed"})  # fmt: skip
    return out


STORIES: dict[str, tuple[str, list[str]]] = {
    "parcel_delivery": (
        "Fake {brand} redelivery texts point to {domain}",
        [
            "Recipients get an SMS saying a parcel could not be delivered because the address is "
            "incomplete, with a link to {domain}.",
            "The page asks for a redelivery fee of ${amount} and then for full card details.",
            "Some messages add a callback number, {phone}, answered by someone posing as a "
            "courier.",
            "Couriers never charge a redelivery fee by text; track parcels only from the official "
            "app.",
        ],
    ),
    "bank_impersonation": (
        "{brand} customers targeted by account-suspension phishing on {domain}",
        [
            "A message claims the account is locked after unusual sign-in activity and links to "
            "{domain}, a look-alike login page.",
            "Victims who enter their password are then asked for the one-time code sent by their "
            "bank, which lets the criminals move ${amount}.",
            "A follow-up call from {phone} pretends to be the fraud department.",
            "Banks do not ask for one-time codes by phone or text.",
        ],
    ),
    "irs_impersonation": (
        "IRS impersonation: tax refund and unpaid tax threats from {phone}",
        [
            "Callers and texts claim to be from the IRS, threatening arrest over back taxes of "
            "${amount} unless paid today.",
            "Others promise a tax refund that can be claimed at {domain}, which collects Social "
            "Security numbers and bank details.",
            "Payment is demanded in gift cards or cryptocurrency, which the IRS never requests.",
            "The IRS first contacts taxpayers by mail.",
        ],
    ),
    "crypto_investment": (
        "Crypto investment platform {domain} shows fake profits, blocks withdrawals",
        [
            "Victims are introduced to the platform by a new online friend who shares screenshots "
            "of daily returns.",
            "Small first withdrawals work, building trust; later deposits of ${amount} vanish and "
            "a 'tax' or 'unlock fee' is demanded.",
            "Support at {phone} pressures users to deposit more before the account is frozen.",
            "This is the pattern known as pig butchering.",
        ],
    ),
    "tech_support": (
        "Fake {brand} virus alert pop-ups push victims to call {phone}",
        [
            "A browser pop-up, served from {domain}, claims the computer is infected and locks the "
            "screen with a loud warning.",
            "The number connects to a 'technician' who asks for remote access and charges "
            "${amount} for a support plan.",
            "Some victims later find their bank accounts accessed through the remote-access tool.",
            "Real security warnings never include a phone number to call.",
        ],
    ),
    "prize_lottery": (
        "Prize notification scam: 'you won' messages from {domain}",
        [
            "Targets are told they won a sweepstakes or lottery they never entered.",
            "To release the prize they must pay processing fees and taxes of ${amount} up front.",
            "The scammers call from {phone} and send official-looking certificates.",
            "Legitimate lotteries never ask winners to pay to receive a prize.",
        ],
    ),
    "romance": (
        "Romance scam profiles lead to money requests via {domain}",
        [
            "Scammers build a relationship over weeks on dating apps and social media, often "
            "posing as military officers or engineers working overseas.",
            "They then need ${amount} for a medical emergency, customs fee or plane ticket.",
            "Victims are moved to private chat and a phone number, {phone}, to avoid moderation.",
            "Never send money to someone you have not met in person.",
        ],
    ),
    "job_offer": (
        "Fake remote job offers from {domain} ask for upfront payments",
        [
            "Unsolicited messages offer well-paid remote work rating products or completing tasks.",
            "After a few small payouts, the worker must deposit ${amount} to unlock higher-paying "
            "task bundles.",
            "Recruiters reach out over messaging apps and from {phone}.",
            "A real employer never asks you to pay to get paid.",
        ],
    ),
    "toll_road": (
        "Toll road smishing: texts demand an unpaid toll balance via {domain}",
        [
            "Drivers receive a text claiming an unpaid toll balance of ${amount} and threatening a "
            "late fee or licence suspension.",
            "The link leads to {domain}, a copy of the {brand} payment page that steals card "
            "numbers.",
            "Some texts ask the recipient to reply Y and reopen the message to activate the link.",
            "Toll agencies say to check balances only on their official site or app; report the "
            "text and delete it.",
        ],
    ),
}


DISPLAY = {"usps": "USPS", "ups": "UPS", "fedex": "FedEx", "dhl": "DHL", "royalmail": "Royal Mail",
           "paypa1": "PayPal", "bofa": "Bank of America", "wellsfargo": "Wells Fargo",
           "hsbc": "HSBC", "ezpass": "E-ZPass", "e-zpass": "E-ZPass", "sunpass": "SunPass",
           "fastrak": "FasTrak", "txtag": "TxTag", "ezdrive": "EZDriveMA", "ipass": "I-PASS",
           "micros0ft": "Microsoft", "apple-id": "Apple", "irs": "IRS"}  # fmt: skip


# What each kind of scam typically asks for, in dollars.
AMOUNTS: dict[str, list[float]] = {
    "parcel_delivery": [1.99, 2.99, 3.00, 3.95],
    "toll_road": [3.95, 4.15, 6.99, 11.69, 12.51],
    "bank_impersonation": [850, 2400, 9800],
    "irs_impersonation": [1800, 4250, 7900],
    "crypto_investment": [5000, 25000, 120000],
    "tech_support": [299, 499, 1200],
    "prize_lottery": [450, 1500, 3000],
    "romance": [2000, 8500, 40000],
    "job_offer": [120, 600, 1800],
}
REGIONS = ["New York", "New Jersey", "Florida", "Texas", "California", "Illinois", "Georgia",
           "Washington", "Massachusetts", "Ohio", "Arizona", "several US states", "the UK",
           "Canada", "Australia"]  # fmt: skip


def brand_name(category: str, domain: str) -> str:
    """The brand a look-alike domain imitates, as a person would write it."""
    for token in sorted(LURES[category][1], key=len, reverse=True):
        if token in domain:
            return DISPLAY.get(token, token.replace("-", " ").title())
    return "the agency" if category in ("toll_road", "irs_impersonation") else "the company"


def reports(rng: random.Random, indicators: list[dict[str, object]]) -> list[dict[str, object]]:
    by_kind: dict[tuple[str, str], list[str]] = {}
    for row in indicators:
        by_kind.setdefault((str(row["kind"]), str(row["category"])), []).append(str(row["value"]))
    out: list[dict[str, object]] = []
    for n in range(240):
        category = CATEGORIES[n % len(CATEGORIES)]
        title, sentences = STORIES[category]
        domain = rng.choice(by_kind[("domain", category)])
        phones_ = by_kind.get(("phone", category)) or by_kind[("phone", CATEGORIES[0])]
        details = {
            "domain": domain,
            "phone": rng.choice(phones_),
            "brand": brand_name(category, domain),
            "amount": f"{rng.choice(AMOUNTS[category]):,}",
        }
        region = rng.choice(REGIONS)
        published = START + timedelta(days=rng.randrange((END - START).days))
        out.append({
            "title": title.format(**details),
            "url": f"https://reports.scamtrail.example/{published:%Y/%m}/{category}-{n:04d}",
            "body": f"Reports of this campaign came from {region}. "
            + " ".join(s.format(**details) for s in sentences),
            "published": published.isoformat(),
        })  # fmt: skip
    return out


def main() -> None:
    rng = random.Random(SEED)
    indicators = rows(rng)
    values = {str(row["value"]) for row in indicators}
    assert not values & LEGITIMATE, values & LEGITIMATE
    with (HERE / "indicators.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(indicators[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(indicators)
    with (HERE / "reports.jsonl").open("w") as f:
        for report in reports(rng, indicators):
            f.write(json.dumps(report) + "\n")
    print(f"{len(indicators)} indicators, written to {HERE}")


if __name__ == "__main__":
    main()
