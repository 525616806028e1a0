"""Realistic fake contacts, fast enough to make a million of them in seconds.

Plain random choices over curated pools instead of Faker: Faker costs ~50 µs per value,
which alone would take minutes at a million rows.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contacts.ids import uuid7

FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy "
    "Matthew Betty Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily "
    "Andrew Donna Joshua Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa "
    "Timothy Deborah Ronald Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan "
    "Cynthia Jacob Kathleen Gary Amy Nicholas Angela Eric Shirley Jonathan Anna Stephen "
    "Brenda Larry Pamela Justin Emma Scott Nicole Brandon Helen Benjamin Samantha Samuel "
    "Katherine Gregory Christine Alexander Debra Frank Rachel Patrick Carolyn Raymond Janet "
    "Jack Catherine Dennis Maria Jerry Heather Tyler Diane Aaron Ruth Jose Julie Adam "
    "Olivia Nathan Joyce Henry Virginia Douglas Victoria Zachary Kelly Peter Lauren Kyle "
    "Christina Ethan Joan Walter Evelyn Noah Judith Jeremy Megan Christian Andrea Keith "
    "Cheryl Roger Hannah Terry Jacqueline Gerald Martha Harold Gloria Sean Teresa Austin "
    "Ann Carl Sara Arthur Madison Lawrence Frances Dylan Kathryn Jesse Janice Jordan Jean "
    "Bryan Abigail Billy Alice Joe Judy Bruce Sophia Gabriel Grace Logan Denise Albert "
    "Amber Willie Doris Alan Marilyn Juan Danielle Wayne Beverly Elijah Isabella Randy "
    "Theresa Roy Diana Vincent Natalie Ralph Brittany Eugene Charlotte Russell Marie Bobby "
    "Kayla Mason Alexis Philip Lori Amelie Lucas Hugo Chloe Louis Ines Yuki Haruto Sakura "
    "Wei Mei Arjun Priya Rahul Ananya Omar Fatima Ali Leila Mateo Sofia Diego Valentina "
    "Lars Ingrid Sven Astrid Kofi Amara Tariq Zara"
).split()

LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez "
    "Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson "
    "White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott "
    "Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell "
    "Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes "
    "Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson "
    "Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross "
    "Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson "
    "Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton "
    "Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis "
    "Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez "
    "McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker Guzman "
    "Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon "
    "Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox "
    "Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Dubois Lefebvre Moreau "
    "Laurent Muller Schneider Fischer Weber Rossi Russo Bianchi Tanaka Suzuki Takahashi "
    "Wang Zhang Liu Singh Kumar Sharma Haddad Nasser Okafor Mensah Larsen Johansson Novak "
    "Kowalski Silva Santos Oliveira Costa"
).split()

EMAIL_DOMAINS = (
    "gmail.com outlook.com yahoo.com icloud.com proton.me hey.com fastmail.com acme.io "
    "globex.com initech.com umbrella.co hooli.com stark.industries wayne.enterprises "
    "piedpiper.com aperture.science cyberdyne.io soylent.co wonka.com tyrell.corp"
).split()

COMPANIES = (
    "Acme Corp|Globex|Initech|Umbrella|Hooli|Stark Industries|Wayne Enterprises|Pied Piper|"
    "Aperture Science|Cyberdyne|Soylent|Wonka Industries|Tyrell Corp|Vandelay Industries|"
    "Dunder Mifflin|Gringotts|Monsters Inc|Oceanic Airlines|Prestige Worldwide|"
    "Sterling Cooper|Blue Sun|Virtucon|Massive Dynamic|Nakatomi Trading|Bluth Company|"
    "Los Pollos Hermanos|Krusty Krab|Wernham Hogg|Gekko & Co|Ollivanders"
).split("|")

CITIES = (
    "New York|London|Paris|Berlin|Toronto|Sydney|Tokyo|Madrid|Lisbon|Amsterdam|Austin|"
    "Chicago|San Francisco|Seattle|Dublin|Singapore|Nairobi|Lagos|Mumbai|Sao Paulo|"
    "Mexico City|Stockholm|Warsaw|Prague|Vienna|Zurich|Cape Town|Seoul|Melbourne|Boston"
).split("|")

# Area codes that libphonenumber accepts as valid US numbers.
AREA_CODES = (
    "201 202 203 205 206 207 208 209 210 212 213 214 215 216 217 218 219 224 225 228 229 "
    "231 234 239 240 248 251 252 253 254 256 260 262 267 269 270 272 276 281 301 302 303 "
    "304 305 307 308 309 310 312 313 314 315 316 317 318 319 320 321 323 325 330 331 334 "
    "336 337 339 347 351 352 360 361 386 401 402 404 405 406 407 408 409 410 412 413 414 "
    "415 417 419 423 424 425 430 432 434 435 440 442 443 469 470 475 478 479 480 484 501 "
    "502 503 504 505 507 508 509 510 512 513 515 516 517 518 520 530 540 541 551 559 561 "
    "562 563 567 570 571 573 574 575 580 585 586 601 602 603 605 606 607 608 609 610 612 "
    "614 615 616 617 618 619 620 623 626 630 631 636 641 646 650 651 657 660 661 662 678 "
    "682 701 702 703 704 706 707 708 712 713 714 715 716 717 718 719 720 724 727 731 732 "
    "734 740 754 757 760 763 765 770 772 773 774 775 781 785 786 801 802 803 804 805 806 "
    "808 810 812 813 814 815 816 817 818 828 830 831 832 843 845 847 848 850 856 857 858 "
    "859 860 862 863 864 865 870 878 901 903 904 906 907 908 909 910 912 913 914 915 916 "
    "917 918 919 920 925 928 931 936 937 940 941 947 949 951 952 954 956 970 971 972 973 "
    "978 979 980 985 989"
).split()

TAGS = (
    "vip|churn-risk|beta|newsletter|enterprise|trial|partner|reseller|onboarding|"
    "needs-follow-up|refund-requested|happy-customer|bug-reporter|annual-plan|monthly-plan|"
    "education|nonprofit|agency|developer|decision-maker"
).split("|")

PLANS = ["Free", "Starter", "Pro", "Enterprise"]

ATTRIBUTES = [
    # key, label, type, options, secure, description
    ("plan", "Plan", "select", PLANS, False, "Current subscription plan."),
    ("mrr", "MRR (USD)", "number", [], False, "Monthly recurring revenue."),
    ("beta_tester", "Beta tester", "boolean", [], False, "Opted into beta features."),
    ("signup_date", "Signup date", "date", [], False, "When the account was created."),
    ("last_order_at", "Last order", "datetime", [], False, "Time of the latest order."),
    ("website", "Website", "url", [], False, "Company or personal website."),
    ("city", "City", "text", [], False, "City the customer lives in."),
    ("lifetime_value", "Lifetime value", "number", [], True, "Set by the billing system only."),
]

VISITOR_LINES = [
    "Hi, I can't log into my account since this morning.",
    "How do I change my billing email?",
    "Is there a discount for annual plans?",
    "My last invoice looks wrong, I was charged twice.",
    "Can I export my data to CSV?",
    "The mobile app keeps crashing when I open settings.",
    "I'd like to upgrade to the {plan} plan.",
    "Do you integrate with Salesforce?",
    "Please cancel my subscription.",
    "Where can I find the API documentation?",
]
# The bot knows who it talks to only when the visitor is verified (SPEC 6: the context
# API gives it nothing else), so only then does it use their name or plan.
BOT_LINES_VERIFIED = [
    "Thanks {first}! Let me look into that for you.",
    "I found your account, {first}. You're on the {plan} plan.",
    "Here is the article that explains it: https://help.example.com/articles/42",
    "I've passed this to our support team; someone will reply shortly.",
]
BOT_LINES_UNVERIFIED = [
    "Thanks! Let me look into that for you.",
    "Here is the article that explains it: https://help.example.com/articles/42",
    "I've passed this to our support team; someone will reply shortly.",
    "Could you sign in first? Then I can look at your account.",
]
# Staff see the stored name, so they greet by it only when there is one.
STAFF_LINES_NAMED = [
    "Hi {first}, this is Alex from support. I've fixed it on our side.",
    "Thanks for your patience {first}, the refund is on its way.",
    "I've escalated this to engineering and will update you tomorrow.",
]
STAFF_LINES_UNNAMED = [
    "Hi, this is Alex from support. I've fixed it on our side.",
    "Thanks for your patience, the refund is on its way.",
    "I've escalated this to engineering and will update you tomorrow.",
]
SUBJECTS = ["Login problem", "Billing question", "Upgrade", "Bug report", "Data export", ""]


@dataclass
class DemoBatch:
    contacts: list[tuple] = field(default_factory=list)
    contact_tags: list[tuple] = field(default_factory=list)
    stripe_accounts: list[tuple] = field(default_factory=list)
    conversations: list[tuple] = field(default_factory=list)
    messages: list[tuple] = field(default_factory=list)
    audit_events: list[tuple] = field(default_factory=list)


CONTACT_COLUMNS = (
    "id", "agent_id", "external_id", "name", "email", "phone", "avatar_url", "company",
    "attributes", "identity", "identity_source", "verified_at", "first_seen_at",
    "last_seen_at", "conversation_count", "created_at", "updated_at",
)  # fmt: skip
CONTACT_TAG_COLUMNS = ("contact_id", "tag_id", "created_at")
STRIPE_COLUMNS = ("contact_id", "label", "stripe_id", "stripe_email", "created_at")
CONVERSATION_COLUMNS = (
    "id", "agent_id", "contact_id", "status", "subject", "contact_erased",
    "created_at", "updated_at", "last_message_at",
)  # fmt: skip
MESSAGE_COLUMNS = ("conversation_id", "role", "body", "created_at")
AUDIT_COLUMNS = (
    "agent_id", "contact_id", "action", "channel", "actor_label", "changes", "created_at",
)  # fmt: skip


def generate(
    *,
    agent_id: int,
    count: int,
    first_number: int,
    tag_ids: list[int],
    seed: int,
    now: datetime | None = None,
    first_ms: int | None = None,
    batch_size: int = 20_000,
    audit: bool = True,
) -> Iterator[DemoBatch]:
    """Yield batches of rows (tuples in the *_COLUMNS orders) for `count` new contacts.

    audit=False leaves out the "created" history entries (bulk loads for benchmarks).
    """
    rng = random.Random(seed)
    r = rng.random  # one call per decision: rng.choice/randrange cost 5x more per value

    def pick(seq):
        return seq[int(r() * len(seq))]

    now = now or datetime.now(UTC)
    now_ts = now.timestamp()
    two_years = 730 * 86400
    alnum = string.ascii_letters + string.digits
    tag_counts = (0, 0, 1, 1, 2, 3)
    lower_first = {n: n.lower() for n in FIRST_NAMES}
    lower_last = {n: n.lower() for n in LAST_NAMES}
    batch = DemoBatch()
    # Ids increase in generation order (one millisecond apart, ending now) so the load
    # appends to the primary-key index instead of scattering across it.
    if first_ms is None:
        first_ms = int(now_ts * 1000) - count
    for index in range(count):
        number = first_number + index
        contact_id = uuid7(first_ms + index)
        created_ts = now_ts - r() * two_years
        created = datetime.fromtimestamp(created_ts, UTC)
        roll = r()
        if roll < 0.70:
            identity, source = "verified", pick(("jwt", "api", "import"))
        elif roll < 0.90:
            identity, source = "self_reported", "widget"
        else:
            identity, source = "anonymous", ""

        first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
        name = email = phone = company = avatar = ""
        external_id = None
        attributes: dict = {}
        if identity != "anonymous":
            name = f"{first} {last}"
            email = (
                f"{lower_first[first]}.{lower_last[last]}{int(r() * 999) + 1}@{pick(EMAIL_DOMAINS)}"
            )
            if r() < 0.55:
                phone = f"+1{pick(AREA_CODES)}{200 + int(r() * 800)}{int(r() * 10000):04d}"
            if r() < 0.5:
                company = pick(COMPANIES)
            if r() < 0.2:
                avatar = f"https://avatars.example.com/{number}.png"
        if identity == "verified":
            external_id = f"usr_{number:08d}"
            roll = r()
            plan = (
                "Free"
                if roll < 0.5
                else "Starter"
                if roll < 0.75
                else "Pro"
                if roll < 0.93
                else "Enterprise"
            )
            attributes["plan"] = plan
            if plan != "Free":
                attributes["mrr"] = pick((19, 49, 99, 199, 499, 1999)) + pick((0, 0.5))
            if r() < 0.3:
                attributes["beta_tester"] = r() < 0.5
            attributes["signup_date"] = created.date().isoformat()
            if r() < 0.4:
                order = datetime.fromtimestamp(created_ts + r() * (now_ts - created_ts), UTC)
                attributes["last_order_at"] = order.isoformat(timespec="seconds")[:19] + "Z"
            if company and r() < 0.5:
                attributes["website"] = f"https://www.{company.split()[0].lower()}.example.com/"
            if r() < 0.6:
                attributes["city"] = pick(CITIES)
            if r() < 0.3:
                attributes["lifetime_value"] = 100 + int(r() * 49900)
        elif identity == "self_reported" and r() < 0.5:
            attributes["city"] = pick(CITIES)

        first_seen_ts = created_ts + r() * 3600
        first_seen = datetime.fromtimestamp(first_seen_ts, UTC)
        last_seen = datetime.fromtimestamp(
            first_seen_ts + r() * max(now_ts - first_seen_ts, 1), UTC
        )
        conversation_count = 0
        if r() < 0.06:
            conversation_count = pick((1, 1, 1, 2))
            for _ in range(conversation_count):
                _conversation(
                    rng,
                    batch,
                    agent_id,
                    contact_id,
                    first if name else "",
                    attributes,
                    last_seen,
                    identity == "verified",
                )

        batch.contacts.append(
            (
                contact_id, agent_id, external_id, name, email, phone, avatar, company,
                attributes, identity, source,
                created if identity == "verified" else None,
                first_seen, last_seen, conversation_count, created, last_seen,
            )
        )  # fmt: skip
        tags_wanted = pick(tag_counts)
        if tags_wanted:
            for tag_id in rng.sample(tag_ids, k=min(len(tag_ids), tags_wanted)):
                batch.contact_tags.append((contact_id, tag_id, created))
        if identity == "verified" and r() < 0.15:
            stripe_id = "cus_" + "".join(pick(alnum) for _ in range(14))
            batch.stripe_accounts.append((contact_id, "Main account", stripe_id, email, created))
        if audit:
            batch.audit_events.append(
                (agent_id, contact_id, "created", "system", "demo data", {}, created)
            )
        if len(batch.contacts) >= batch_size:
            yield batch
            batch = DemoBatch()
    if batch.contacts:
        yield batch


def _conversation(rng, batch, agent_id, contact_id, first, attributes, last_seen, verified) -> None:
    conversation_id = uuid7()
    started = last_seen - timedelta(minutes=rng.randrange(5, 60 * 24 * 30))
    values = {"first": first, "plan": attributes.get("plan", "Pro")}
    at = started
    bot_lines = BOT_LINES_VERIFIED if verified else BOT_LINES_UNVERIFIED
    lines = [("visitor", rng.choice(VISITOR_LINES)), ("bot", rng.choice(bot_lines))]
    if rng.random() < 0.4:
        staff_lines = STAFF_LINES_NAMED if first else STAFF_LINES_UNNAMED
        lines += [("visitor", rng.choice(VISITOR_LINES)), ("staff", rng.choice(staff_lines))]
    for role, line in lines:
        at += timedelta(seconds=rng.randrange(5, 600))
        batch.messages.append((conversation_id, role, line.format(**values), at))
    status = rng.choices(("open", "escalated", "closed"), weights=(2, 1, 7))[0]
    batch.conversations.append(
        (
            conversation_id,
            agent_id,
            contact_id,
            status,
            rng.choice(SUBJECTS),
            False,
            started,
            at,
            at,
        )
    )
