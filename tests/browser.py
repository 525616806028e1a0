"""What the browser tests share: signing in, the demo workspace they look at, and the checks
every screen must pass (no sideways page scroll, no serious accessibility violation)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import Page, expect

from tests.factories import ConversationFactory, MembershipFactory, MessageFactory, UserFactory

PASSWORD = "correct horse battery"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

# The README's screenshots are refreshed by `make screenshots` (UPDATE_SCREENSHOTS=1); an
# ordinary run writes them to a temporary folder so the checkout stays clean.
SCREENSHOTS = (
    Path(settings.BASE_DIR) / "docs" / "screenshots"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "rapport-screenshots"
)


def htmx_settled(page: Page) -> None:
    """Wait until htmx has swapped, settled and wired up what it last brought in: a control
    used sooner may be the old one, or the new one before its hx-trigger listens."""
    page.wait_for_function(
        "() => window.htmx && !document.querySelector("
        "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
    )


def readme_shot(page: Page, name: str, *, full_page: bool = False) -> None:
    """One of the README's screenshots, taken by the browser test that reaches that state."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)
    assert (SCREENSHOTS / name).stat().st_size > 10_000


AXE = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"


def demo_workspace() -> dict:
    """A workspace like a real one: demo contacts plus Ada, whom the tests look for, and an
    admin to sign in as."""
    from contacts.models import Contact
    from contacts.services import contact_create
    from core.actors import Actor
    from workspaces.models import Agent, Membership

    call_command("seed_demo", workspace="Acme", agent="Support", contacts=60, seed=7)
    agent = Agent.objects.get(name="Support")
    user = UserFactory(username="lead@acme.test", password=PASSWORD)
    MembershipFactory(user=user, workspace=agent.workspace, role=Membership.Role.ADMIN)
    actor = Actor.staff(user, is_admin=True)
    ada = contact_create(
        agent=agent,
        actor=actor,
        data={
            "name": "Ada Lovelace",
            "email": "ada@analytical.example",
            "phone": "+44 20 7946 0958",
            "company": "Analytical Engines",
            "external_id": "usr_ada",
            "attributes": {"plan": "Pro", "mrr": 120, "signup_date": "2024-02-01"},
            "tags": ["vip"],
            "stripe_accounts": [{"label": "Main", "stripe_id": "cus_Ada1815", "stripe_email": ""}],
        },
    ).contact
    conversation = ConversationFactory(agent=agent, contact=ada, subject="Invoice for March")
    MessageFactory(conversation=conversation, body="Hi, this is Ada Lovelace. Where is my invoice?")
    Contact.objects.filter(pk=ada.pk).update(conversation_count=1)
    return {"agent": agent, "user": user, "ada": ada, "conversation": conversation}


def sign_in(page: Page, base_url: str, username: str) -> None:
    """Sign in through the form and wait for the dashboard."""
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).not_to_have_url(f"{base_url}/login/")


def page_overflow(page: Page) -> dict | None:
    """How far the page scrolls sideways, and the widest elements to blame; None when it
    does not (tables may scroll inside their own box)."""
    return page.evaluate(
        """() => {
          const doc = document.documentElement;
          const width = window.innerWidth;
          if (doc.scrollWidth <= width) return null;
          const culprits = [];
          for (const el of document.body.querySelectorAll("*")) {
            const box = el.getBoundingClientRect();
            if (box.right > width + 1 && box.width > 0) {
              let scrolled = false;
              for (let p = el.parentElement; p; p = p.parentElement) {
                const o = getComputedStyle(p).overflowX;
                if (o === "auto" || o === "scroll" || o === "hidden") { scrolled = true; break; }
              }
              const classes = el.className ? "." + String(el.className).split(" ").join(".") : "";
              if (!scrolled) culprits.push(
                el.tagName.toLowerCase() + classes + " right=" + Math.round(box.right));
            }
          }
          return {scrollWidth: doc.scrollWidth, width, culprits: culprits.slice(0, 8)};
        }"""
    )


def axe_available() -> bool:
    return AXE.exists()


def require_axe() -> None:
    """Accessibility checks need axe-core from npm (make test installs it); in CI they run."""
    if axe_available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does)")
    pytest.skip("axe-core not installed (npm ci): accessibility checks skipped")


def serious_axe_violations(page: Page, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """axe-core's violations of serious or critical impact on the page as it stands, one line
    each. The script is evaluated from the test, not loaded by the page, so the
    Content-Security-Policy (script-src 'self' + nonce) stays as strict as in production."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 6).map(n => n.target.join(" ") + " — " + n.failureSummary
              .split("\\n").slice(1, 2).join(""))}));
        }"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(v["nodes"])
        for v in results
        if v["impact"] in ("serious", "critical") and v["id"] not in ignore
    ]
