"""Write tests/data/corpus.jsonl: a labelled corpus of scam and legitimate messages.

Deterministic (seeded): run `python tests/data/make_corpus.py` and commit both files. Phone
numbers are in the fictional 555-01xx ranges or premium/VoIP ranges; scam domains are invented.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 20261127
PER_TEMPLATE = 5

PHONES = ["+1 (202) 555-0143", "202-555-0187", "+1 312 555 0122", "(415) 555-0175"]
PREMIUM = ["+1 900 555 0199", "1-900-555-0142", "+44 909 879 0879", "+44 906 123 4567"]
NAMES = ["Sam", "Priya", "Tom", "Maria", "Chen", "Aisha", "Luca", "Grace"]
AMOUNTS = ["$1.99", "$2.50", "$3.00", "£1.45", "$0.99"]
BIG = ["$4,850.00", "$1,299", "£2,400", "$980.00", "EUR 1500"]
CODES = ["482913", "771204", "305566", "918273", "640018"]

SCAM: list[tuple[str, str, dict[str, list[str]]]] = [
    (
        "sms",
        "USPS: Your package is on hold due to an incomplete address. Pay the {fee} "
        "redelivery fee within 24 hours: {url}",
        {
            "url": [
                "usps-redelivery.top/pay",
                "https://usps.parcel-hold.xyz/track",
                "usps-care.icu/r",
                "http://uspz-delivery.com/update",
                "usps.redeliver-help.live",
            ]
        },
    ),
    (
        "sms",
        "Royal Mail: we could not deliver your parcel. A {fee} fee is required to arrange "
        "redelivery. Visit {url}",
        {
            "url": [
                "royalmail-redelivery.info/uk",
                "royal-mail.reschedule-parcel.com",
                "rm-parcels.top",
                "royalmail.missed-delivery.net/fee",
                "http://royalmaiI-help.com",
            ]
        },
    ),
    (
        "sms",
        "DHL Express: customs fee of {fee} outstanding for shipment {code}. Pay now or the "
        "parcel will be returned: {url}",
        {
            "url": [
                "dhl-customs.click/pay",
                "dhl.express-customs.xyz",
                "https://dhI-parcel.com/fee",
                "dhlparcel-clearance.buzz",
                "http://185.22.91.4/dhl/pay",
            ]
        },
    ),
    (
        "sms",
        "E-ZPass final notice: you have an unpaid toll balance of {fee}. Avoid a late fee "
        "of $50.00 by paying today at {url}",
        {
            "url": [
                "ezpass-tolls.top",
                "e-zpass.tollpay-ny.com",
                "https://ezpass-service.icu/pay",
                "sunpass-toll.xyz",
                "tollservices-ezpass.live/balance",
            ]
        },
    ),
    (
        "sms",
        "Chase: unusual sign-in detected. Your account has been locked. Verify your "
        "identity immediately at {url}",
        {
            "url": [
                "chase-secure-verify.com",
                "https://chase.account-unlock.info",
                "chasebank-alerts.top",
                "http://secure-chase-login.net/verify",
                "chase.online-verification.click",
            ]
        },
    ),
    (
        "sms",
        "Wells Fargo Alert: a payment of {big} is pending. If this was not you, call our "
        "fraud team now at {phone}",
        {},
    ),
    (
        "sms",
        "Bank of America: your debit card has been suspended. Reply with your card number "
        "and PIN to reactivate it, or call {phone}",
        {},
    ),
    (
        "email",
        "From: IRS Tax Department <irs-refunds@{domain}>\nYou owe {big} in back taxes. "
        "A warrant for your arrest will be issued unless you call {phone} today. Payment is "
        "accepted in gift cards.",
        {
            "domain": [
                "taxgov-service.com",
                "irs-helpdesk.net",
                "treasury-notice.org",
                "irsgov.us",
                "tax-relief.co",
            ]
        },
    ),
    (
        "sms",
        "HMRC: you are eligible for a tax refund of {big}. Claim your refund now by "
        "confirming your bank details at {url}",
        {
            "url": [
                "hmrc-refund.uk-claim.com",
                "gov-uk-taxrefund.xyz",
                "hmrc.tax-rebate.top",
                "https://hmrc-online.claims-portal.net",
                "taxrefund-hmrc.live",
            ]
        },
    ),
    (
        "sms",
        "Congratulations! You have won a {prize} in our weekly lottery. Claim your prize "
        "before midnight: {url}",
        {
            "prize": [
                "brand new iPhone 16",
                "$1,000 Walmart gift card",
                "cash prize of $5,000",
                "free cruise for two",
            ],
            "url": [
                "prize-claim.top/win",
                "bit.ly/3xWin",
                "winner-now.xyz",
                "tinyurl.com/claimgift",
                "rewards-center.icu",
            ],
        },
    ),
    (
        "sms",
        "Hi {name}, I'm a crypto trading mentor. Our platform gives guaranteed returns of "
        "30% weekly. Deposit {big} to this wallet and double your money: {url}",
        {
            "url": [
                "coinbase-profit.com",
                "binance-earn.top",
                "cryptoyield-pro.xyz",
                "https://btc-growth.live",
                "trade-ai-profits.click",
            ]
        },
    ),
    (
        "email",
        "From: Coinbase Security <no-reply@{domain}>\nWe detected an unauthorized login "
        "to your wallet. Confirm your seed phrase within 12 hours or your funds will be frozen.",
        {
            "domain": [
                "coinbase-support.help",
                "coinbase-secure.net",
                "c0inbase.com",
                "wallet-verify.io",
                "coinbase.account-recover.com",
            ]
        },
    ),
    (
        "sms",
        "Hello dear, I am a US soldier on a peacekeeping mission. I have fallen in love "
        "with you. I need {big} for my leave papers, please send it via Western Union. Don't "
        "tell anyone about us.",
        {},
    ),
    (
        "sms",
        "Remote part-time job: earn $300 per day working from home, no experience needed. "
        "WhatsApp me at {phone} to start today!",
        {},
    ),
    (
        "sms",
        "Hi {name}, this is the hiring manager at Amazon. You have been selected for a work "
        "from home position, $50/hour. Pay a small fee of $99 for the training kit: {url}",
        {
            "url": [
                "amazon-jobs.work",
                "amzn-careers.top",
                "https://hr-amazon.online/apply",
                "amazon.recruit-team.site",
                "jobs-amazon-hr.xyz",
            ]
        },
    ),
    (
        "sms",
        "MICROSOFT WARNING: your computer is infected with a virus. Call Microsoft support "
        "immediately at {phone} and install AnyDesk so our technician can fix it.",
        {},
    ),
    (
        "email",
        "From: Norton Billing <billing@{domain}>\nYour Norton subscription renewed for "
        "{big}. If you did not authorise this, call {phone} within 24 hours to cancel and get a "
        "refund.",
        {
            "domain": [
                "norton-renewals.com",
                "nortonbilling.net",
                "secure-invoices.co",
                "geeksquad-billing.com",
                "norton.subscription-desk.com",
            ]
        },
    ),
    (
        "email",
        "From: PayPal <service@{domain}>\nSubject: Your account is limited\nWe noticed "
        "suspicious activity. Log in to restore access: {url}",
        {
            "domain": [
                "paypal-service.net",
                "paypa1.com",
                "pay-pal-support.com",
                "paypal.resolution-center.info",
                "intl-paypal.top",
            ],
            "url": [
                "http://paypal-resolve.com/signin",
                "https://paypa1.com/login",
                "paypal.secure-account.xyz/verify",
                "xn--pypal-4ve.com/login",
                "http://192.168.14.7/paypal/login",
            ],
        },
    ),
    (
        "email",
        "From: Apple ID <appleid@{domain}>\nYour Apple ID will be disabled in 24 hours. "
        "Update your payment information: {url}",
        {
            "domain": [
                "apple-id-verify.com",
                "appleid.support-icloud.net",
                "icloud-locked.top",
                "apple.id-security.info",
                "appIe.com",
            ],
            "url": [
                "appleid-unlock.com/update",
                "https://icloud.verify-account.xyz",
                "apple-support-id.live/login",
                "http://appleid.apple.com.secure-id.top/verify",
                "appie-billing.com/account",
            ],
        },
    ),
    (
        "email",
        "From: Netflix <info@{domain}>\nYour membership is on hold. We could not process "
        "your last payment. Update your billing details within 48 hours: {url}",
        {
            "domain": [
                "netflix-billing.com",
                "netfIix.com",
                "netflix.account-hold.net",
                "mailer-netflix.top",
                "nflx-support.info",
            ],
            "url": [
                "netflix-renew.xyz/billing",
                "https://netfl1x.com/account",
                "netflix.payment-update.live",
                "http://nettflix.com/login",
                "netflix-help.click/update",
            ],
        },
    ),
    (
        "email",
        "From: Microsoft 365 <admin@{domain}>\nYour mailbox password expires today. "
        "Sign in here to keep your password: {url}",
        {
            "domain": [
                "office365-admin.com",
                "micros0ft.com",
                "outlook-security.net",
                "m365-helpdesk.top",
                "microsoft.mail-quota.info",
            ],
            "url": [
                "office365-login.xyz/keep",
                "https://microsoft-verify.com/signin",
                "outlook.password-reset.top",
                "http://micr0soft-online.com/login",
                "login-microsoftonline.click/auth",
            ],
        },
    ),
    (
        "email",
        "From: DocuSign <dse@{domain}>\nYou have a document to review and sign: "
        "'Invoice_{code}.pdf'. Log in with your email password to view: {url}",
        {
            "domain": [
                "docusign-mail.net",
                "docusign.esign-review.com",
                "d0cusign.com",
                "secure-docs.top",
                "docs-share.xyz",
            ],
            "url": [
                "docusign-view.top/doc",
                "https://docusign.document-share.xyz/login",
                "bit.ly/docsign7",
                "https://d0cusign.com/review",
                "docs-view.click/signin",
            ],
        },
    ),
    (
        "url",
        "{url}",
        {
            "url": [
                "http://paypal-login.secure-verify.top/signin",
                "https://amaz0n-account.com/verify",
                "http://wellsfargo-online.click/login",
                "usps-tracking-redelivery.xyz/pay",
                "http://xn--80ak6aa92e.com/login",
                "https://bankofamerlca.com/signin",
                "http://coinbase-wallet.live/restore",
                "https://steamcommunlty.com/login",
                "http://45.133.1.20/secure/update",
                "binance-airdrop.top/claim",
                "https://appleid.apple.com.account-verify.info/",
                "netflix-billing.buzz/update",
                "http://chase.com.secure-login.tk/verify",
                "microsoft-support.icu/help",
                "https://ezpass-tollpay.top/pay",
            ]
        },
    ),
    ("phone", "{premium}", {}),
    (
        "sms",
        "Your parcel could not be delivered. Call {premium} to reschedule within 24 hours "
        "or it will be returned to sender.",
        {},
    ),
    (
        "sms",
        "Hi mum, I dropped my phone in the toilet, this is my new number. Can you send "
        "{big} for a new phone? I'll pay you back, please do it now, don't tell dad",
        {},
    ),
    (
        "email",
        "From: CEO <ceo.office@{domain}>\nAre you at your desk? I need you to buy six "
        "$200 Apple gift cards for a client right away. Scratch the back and send me the codes. "
        "Keep this confidential.",
        {
            "domain": [
                "gmail-ceo.com",
                "exec-mail.net",
                "corp-office.co",
                "ceo-desk.top",
                "company-exec.info",
            ]
        },
    ),
    (
        "sms",
        "Your Amazon account has been locked due to suspicious activity. Confirm your "
        "identity within 24 hours or it will be closed: {url}",
        {
            "url": [
                "amazon-verify.top/id",
                "https://amazon.account-check.xyz",
                "amzn-secure.icu/login",
                "http://amaz0n.com/confirm",
                "amazon-security-alert.live",
            ]
        },
    ),
    (
        "sms",
        "Social Security Administration: your SSN has been suspended due to criminal "
        "activity. Press 1 or call {phone} immediately to avoid legal action.",
        {},
    ),
    (
        "sms",
        "Medicare: you qualify for a free back brace and a $500 grocery card. Reply with "
        "your Medicare number and date of birth to claim your gift.",
        {},
    ),
]

LEGIT: list[tuple[str, str, dict[str, list[str]]]] = [
    ("sms", "Your verification code is {code}. Do not share this code with anyone.", {}),
    ("sms", "G-{code} is your Google verification code.", {}),
    ("sms", "Your Apple ID code is: {code}. Don't share it with anyone.", {}),
    ("sms", "{code} is your WhatsApp code. Don't share this code with others.", {}),
    ("sms", "Chase: {code} is your one-time code. We'll never call you to ask for it.", {}),
    (
        "sms",
        "Reminder: your appointment with Dr. {name} is on {day} at {time}. Reply C to "
        "confirm or call {phone} to reschedule.",
        {},
    ),
    (
        "sms",
        "Hi, this is Bright Smile Dental reminding you of your cleaning on {day} at "
        "{time}. See you then!",
        {},
    ),
    (
        "sms",
        "Your table for 4 at Luigi's is booked for {day} at {time}. Reply STOP to opt out.",
        {},
    ),
    ("sms", "Hey {name}! Are we still on for dinner {day}? I can pick you up at {time}.", {}),
    ("sms", "Running 10 minutes late, grab us a table please", {}),
    ("sms", "Happy birthday {name}!! Hope you have an amazing day, call me later", {}),
    ("sms", "Can you get milk and eggs on the way home? Thanks x", {}),
    (
        "sms",
        "{name}, the kids' football practice moved to {time} on {day}. Bring water bottles.",
        {},
    ),
    ("sms", "Did you see the game last night? Unbelievable finish", {}),
    (
        "url",
        "{url}",
        {
            "url": [
                "https://www.paypal.com/myaccount/summary",
                "https://www.usps.com/manage/",
                "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223344556677",
                "https://www.amazon.com/gp/your-account/order-history",
                "https://www.netflix.com/browse",
                "https://www.irs.gov/refunds",
                "https://www.gov.uk/check-state-pension",
                "https://github.com/python/cpython",
                "https://en.wikipedia.org/wiki/Phishing",
                "https://www.chase.com/personal/checking",
                "https://www.bbc.co.uk/news",
                "https://docs.python.org/3/library/re.html",
                "https://www.apple.com/iphone/",
                "https://support.microsoft.com/en-us/account-billing",
                "https://www.royalmail.com/track-your-item",
            ]
        },
    ),
    (
        "sms",
        "USPS: your package 9400 1118 9922 3344 5566 77 was delivered today at {time}. "
        "Track at https://www.usps.com/track",
        {},
    ),
    (
        "sms",
        "Your Amazon order #112-4567890-1234567 has shipped and will arrive {day}. Track "
        "it at https://www.amazon.com/orders",
        {},
    ),
    (
        "email",
        "From: Amazon.com <auto-confirm@amazon.com>\nThank you for your order. Order "
        "total: {big}. Arriving {day}. View or manage your order in Your Orders on amazon.com.",
        {},
    ),
    (
        "email",
        "From: PayPal <service@paypal.com>\nYou sent a payment of {fee} to {name}. "
        "View the details at https://www.paypal.com/activity",
        {},
    ),
    (
        "email",
        "From: Netflix <info@mailer.netflix.com>\nNew on Netflix this week: three "
        "documentaries and the return of your favourite series. Browse at "
        "https://www.netflix.com/browse",
        {},
    ),
    (
        "email",
        "From: The Python Weekly <newsletter@example.com>\nThis week: pattern matching "
        "tips, a PyCon recap and five libraries worth a look. Read online at "
        "https://example.com/issues/{code}",
        {},
    ),
    (
        "email",
        "From: {name} <{lname}@example.org>\nHi, attached are the slides from today's "
        "meeting. Let me know if anything is missing. Thanks, {name}",
        {},
    ),
    (
        "email",
        "From: City Library <notices@example.net>\nThe book you reserved is ready for "
        "pickup until {day}. Opening hours: 9am-6pm.",
        {},
    ),
    (
        "sms",
        "Wells Fargo: did you attempt a card purchase of {fee} at GAS STATION on {day}? "
        "Reply YES or NO. We will never ask for your PIN.",
        {},
    ),
    ("sms", "Your Uber is arriving now. Look for the white Toyota, plate 7ABC123.", {}),
    (
        "sms",
        "Your prescription is ready for pickup at CVS Pharmacy, 100 Main St. Questions? "
        "Call {phone}.",
        {},
    ),
    ("phone", "{phone}", {}),
    (
        "sms",
        "Thanks for your payment of {big} to City Water. Your balance is now $0.00. No "
        "action needed.",
        {},
    ),
    (
        "email",
        "From: GitHub <noreply@github.com>\n[GitHub] A new SSH key was added to your "
        "account. If you did this, no action is needed. Review keys at "
        "https://github.com/settings/keys",
        {},
    ),
    (
        "sms",
        "Spotify: your Premium plan renews on {day} for $11.99. Manage at "
        "https://www.spotify.com/account",
        {},
    ),
]

FILLS = {
    "fee": AMOUNTS,
    "big": BIG,
    "phone": PHONES,
    "premium": PREMIUM,
    "name": NAMES,
    "code": CODES,
    "day": ["Monday", "Tuesday", "Friday", "March 3", "June 12"],
    "time": ["9:30 AM", "2:15 PM", "4:00 PM", "11:00 AM", "6:45 PM"],
    "lname": ["sam.ortiz", "p.rao", "tom.h", "maria.g", "chen.li"],
}


def expand(
    label: str, templates: list[tuple[str, str, dict[str, list[str]]]], rng: random.Random
) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for number, (kind, template, own) in enumerate(templates):
        choices = {**FILLS, **own}
        variants = len(own.get("url", [])) if kind == "url" else PER_TEMPLATE
        seen: set[str] = set()
        for index in range(variants * 3):
            if len(seen) >= variants:
                break
            slots = {
                key: (values[index % len(values)] if key in own else rng.choice(values))
                for key, values in choices.items()
            }
            content = template.format(**slots)
            if content in seen:
                continue
            seen.add(content)
            note = template.split(":")[0][:40] if kind != "url" else "bare link"
            rows.append(
                {
                    "id": f"{label}-{number:02d}-{len(seen)}",
                    "kind": kind,
                    "content": content,
                    "label": label,
                    "note": note,
                }
            )
    return rows


def main() -> None:
    rng = random.Random(SEED)
    rows = expand("scam", SCAM, rng) + expand("legit", LEGIT, rng)
    path = Path(__file__).with_name("corpus.jsonl")
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    print(f"wrote {len(rows)} messages to {path}")


if __name__ == "__main__":
    main()
