"""Brands scammers impersonate most, with the domains each brand really uses.

Shared by extraction (a brand named in the text) and domain reputation (a brand imitated in a
host name). A label is the form a brand takes inside a host name: "bankofamerica", "usps".

The domains were cross-checked against barb-phish 1.8.0's `barb/data/brands.json` (MIT), which
adds country sites and service domains (amazon.co.jp, primevideo.com, microsoftonline.com). Its
user-content hosts (googleusercontent.com, amazonaws.com, dropboxusercontent.com, googleapis.com)
are left out: anyone can publish under them, so they prove nothing about who is behind a page.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Brand:
    label: str
    name: str
    domains: frozenset[str]
    mentions: tuple[str, ...] = ()  # how the text names it, lowercase; the label if empty


def _brand(label: str, name: str, *domains: str, mentions: tuple[str, ...] = ()) -> Brand:
    return Brand(label, name, frozenset(domains or (f"{label}.com",)), mentions or (label,))


BRANDS: tuple[Brand, ...] = (
    _brand("paypal", "PayPal", "paypal.com", "paypal.me", "paypal.de", "paypal.co.uk"),
    _brand(
        "apple",
        "Apple",
        "apple.com",
        "icloud.com",
        "apple.co",
        "cdn-apple.com",
        "apple-dns.net",
        "applecdn.net",
        mentions=("apple", "icloud", "apple id"),
    ),
    _brand(
        "amazon",
        "Amazon",
        "amazon.com",
        "amazon.co.uk",
        "amazon.de",
        "amazon.ca",
        "amzn.to",
        "amazon.co.jp",
        "amazon.com.au",
        "amazon.es",
        "amazon.fr",
        "amazon.it",
        "amazon.dev",
        "amazon-adsystem.com",
        "amazonalexa.com",
        "amazontrust.com",
        "amazonvideo.com",
        "media-amazon.com",
        "primevideo.com",
    ),
    _brand("usps", "USPS", "usps.com", "usps.gov"),
    _brand("fedex", "FedEx"),
    _brand("dhl", "DHL", "dhl.com", "dhl.de", "dhl.co.uk"),
    _brand("ups", "UPS"),
    _brand("royalmail", "Royal Mail", "royalmail.com", mentions=("royal mail",)),
    _brand("evri", "Evri"),
    _brand("netflix", "Netflix", "netflix.com", "nflxvideo.net", "nflximg.net"),
    _brand("spotify", "Spotify"),
    _brand("disneyplus", "Disney+", mentions=("disney+", "disney plus")),
    _brand("chase", "Chase", "chase.com", "jpmorganchase.com", mentions=("chase bank", "chase")),
    _brand("wellsfargo", "Wells Fargo", mentions=("wells fargo",)),
    _brand(
        "bankofamerica",
        "Bank of America",
        "bankofamerica.com",
        "bofa.com",
        mentions=("bank of america", "bofa"),
    ),
    _brand("citibank", "Citibank", "citi.com", "citibank.com", mentions=("citibank", "citi")),
    _brand("capitalone", "Capital One", mentions=("capital one",)),
    _brand(
        "americanexpress",
        "American Express",
        "americanexpress.com",
        "amex.com",
        mentions=("american express", "amex"),
    ),
    _brand("barclays", "Barclays", "barclays.co.uk", "barclays.com"),
    _brand("hsbc", "HSBC", "hsbc.com", "hsbc.co.uk"),
    _brand("lloydsbank", "Lloyds Bank", "lloydsbank.com", mentions=("lloyds",)),
    _brand("natwest", "NatWest"),
    _brand("santander", "Santander", "santander.com", "santander.co.uk"),
    _brand("venmo", "Venmo"),
    _brand("zelle", "Zelle", "zellepay.com"),
    _brand("cashapp", "Cash App", "cash.app", "cashapp.com", mentions=("cash app", "cashapp")),
    _brand("irs", "IRS", "irs.gov", mentions=("irs", "internal revenue service")),
    _brand("hmrc", "HMRC", "hmrc.gov.uk", "www.gov.uk"),
    _brand(
        "ssa",
        "Social Security Administration",
        "ssa.gov",
        mentions=("social security administration",),
    ),
    _brand("medicare", "Medicare", "medicare.gov"),
    _brand("dvla", "DVLA", "www.gov.uk"),
    _brand("ezpass", "E-ZPass", "e-zpassny.com", "ezpassnj.com", mentions=("e-zpass", "ezpass")),
    _brand("sunpass", "SunPass", "sunpass.com"),
    _brand(
        "microsoft",
        "Microsoft",
        "microsoft.com",
        "live.com",
        "outlook.com",
        "office.com",
        "office365.com",
        "microsoftonline.com",
        "azure.com",
        "cloud.microsoft",
        "static.microsoft",
    ),
    _brand("outlook", "Outlook", "outlook.com", "live.com"),
    _brand("office365", "Office 365", "office.com", "microsoft.com", mentions=("office 365",)),
    _brand(
        "google",
        "Google",
        "google.com",
        "gmail.com",
        "youtube.com",
        "g.co",
        "google.co",
        "google.cn",
        "google.de",
        "google.fr",
        "google.co.uk",
        "googletagmanager.com",
        "googlevideo.com",
        "googlesyndication.com",
        "googleadservices.com",
        "googleblog.com",
        "googledomains.com",
        "google-analytics.com",
        "dns.google",
    ),
    _brand("gmail", "Gmail", "gmail.com", "google.com"),
    _brand("facebook", "Facebook", "facebook.com", "fb.com", "fb.me", "facebook.net", "fbcdn.net"),
    _brand("instagram", "Instagram", "instagram.com", "cdninstagram.com"),
    _brand("whatsapp", "WhatsApp", "whatsapp.com", "wa.me"),
    _brand("meta", "Meta", "meta.com", "facebook.com"),
    _brand("linkedin", "LinkedIn", "linkedin.com", "licdn.com"),
    _brand("twitter", "Twitter", "twitter.com", "x.com", "t.co", "twimg.com"),
    _brand("tiktok", "TikTok"),
    _brand("coinbase", "Coinbase"),
    _brand("binance", "Binance"),
    _brand("kraken", "Kraken"),
    _brand("metamask", "MetaMask", "metamask.io"),
    _brand("blockchain", "Blockchain.com", mentions=("blockchain.com",)),
    _brand("ebay", "eBay"),
    _brand("walmart", "Walmart"),
    _brand("target", "Target", mentions=("target gift card",)),
    _brand("costco", "Costco"),
    _brand("bestbuy", "Best Buy", mentions=("best buy", "geek squad")),
    _brand("norton", "Norton", "norton.com", "nortonlifelock.com"),
    _brand("mcafee", "McAfee"),
    _brand("docusign", "DocuSign", "docusign.com", "docusign.net"),
    _brand("dropbox", "Dropbox"),
    _brand("adobe", "Adobe", "adobe.com", "adobe.io", "adobe.net", "adobecc.com", "adobedtm.com"),
    _brand(
        "steam",
        "Steam",
        "steampowered.com",
        "steamcommunity.com",
        mentions=("steam gift card", "steam account"),
    ),
    _brand("verizon", "Verizon"),
    _brand("att", "AT&T", "att.com", mentions=("at&t",)),
    _brand("tmobile", "T-Mobile", "t-mobile.com", mentions=("t-mobile",)),
    _brand("visa", "Visa"),
    _brand("mastercard", "Mastercard"),
)


def brand_of_domain(registered_domain: str) -> Brand | None:
    """The brand that really owns `registered_domain`, if any."""
    for brand in BRANDS:
        if registered_domain in brand.domains:
            return brand
    return None
