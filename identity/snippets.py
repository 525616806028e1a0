"""Copy-paste code shown on the identity settings page (and run by the tests, so they work).

The secret never appears in a snippet: customers read it from their own environment.
"""

from __future__ import annotations

from dataclasses import dataclass

SECRET_ENV = "RAPPORT_IDENTITY_SECRET"  # noqa: S105 - the variable name, not a secret

PYTHON_JWT = f'''# pip install PyJWT
import os
import time

import jwt


def rapport_token(user):
    """A signed identity for the Rapport widget; make a fresh one per page load."""
    payload = {{
        "user_id": str(user.id),  # required: your id for this user
        "exp": int(time.time()) + 3600,  # required (60 s of clock skew is tolerated)
        "contact_attributes": {{  # optional: contact fields and attribute keys
            "name": user.name,
            "email": user.email,
            "plan": user.plan,  # secure attributes can only be set here
        }},
    }}
    return jwt.encode(payload, os.environ["{SECRET_ENV}"], algorithm="HS256")
'''

NODE_JWT = f"""// npm install jsonwebtoken
const jwt = require("jsonwebtoken");

// A signed identity for the Rapport widget; make a fresh one per page load.
function rapportToken(user) {{
  const payload = {{
    user_id: String(user.id), // required: your id for this user
    contact_attributes: {{ name: user.name, email: user.email, plan: user.plan }},
  }};
  return jwt.sign(payload, process.env.{SECRET_ENV}, {{
    algorithm: "HS256",
    expiresIn: "1h", // sets the required exp claim
  }});
}}
"""

PYTHON_HMAC = f'''import hashlib
import hmac
import os


def rapport_user_hash(user_id):
    """Hex HMAC-SHA256 of the user id, sent as user_hash beside user_id."""
    secret = os.environ["{SECRET_ENV}"].encode()
    return hmac.new(secret, str(user_id).encode(), hashlib.sha256).hexdigest()
'''

NODE_HMAC = f"""const crypto = require("crypto");

// Hex HMAC-SHA256 of the user id, sent as user_hash beside user_id.
function rapportUserHash(userId) {{
  return crypto
    .createHmac("sha256", process.env.{SECRET_ENV})
    .update(String(userId))
    .digest("hex");
}}
"""


@dataclass(frozen=True)
class Snippet:
    id: str
    title: str
    code: str


def server_snippets() -> list[Snippet]:
    return [
        Snippet("snippet-python-jwt", "Python: sign a JWT", PYTHON_JWT),
        Snippet("snippet-node-jwt", "Node.js: sign a JWT", NODE_JWT),
        Snippet("snippet-python-hmac", "Python: compute user_hash", PYTHON_HMAC),
        Snippet("snippet-node-hmac", "Node.js: compute user_hash", NODE_HMAC),
    ]


def page_snippet(*, widget_url: str, agent_public_id: str) -> str:
    """The script tag (with its optional attributes) and the identify call for the
    customer's pages."""
    return f"""<script src="{widget_url}" data-agent="{agent_public_id}"
        data-help-center="help.example.com" async></script>
<!-- data-help-center: your help center's hosts instead of help.example.com, separated by
     spaces; each matches exactly, ignoring case (list subdomains too). A verified visitor's
     clicks on links to them carry their identity there, no code needed.
     Optional, for a visitor you know but have not signed in (say, from a sign-up form);
     self-reported, and never over a signed identify:
       data-user-email="…" data-user-name="…" data-user-phone="…" -->

// In your own script file, once you know who is signed in:
window.addEventListener("rapportLoaded", function () {{
  // Best: a JWT your server signed (rapport_token above).
  Rapport.identify({{ token: tokenFromYourServer }});
  // Or: Rapport.identify({{ user_id: "42", user_hash: hashFromYourServer,
  //                         user_metadata: {{ name: "Ada", email: "ada@example.com" }} }});
}});
"""
