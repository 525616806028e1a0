from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from attributes.models import AttributeDefinition
from contacts.models import Contact, Identity, StripeAccount, Tag
from helpdesk.models import Conversation, Message
from workspaces.models import Agent, Membership, Workspace


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct horse battery")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = Membership.Role.STAFF


class AttributeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AttributeDefinition

    agent = factory.SubFactory(AgentFactory)
    key = factory.Sequence(lambda n: f"attr_{n}")
    label = factory.LazyAttribute(lambda o: o.key.replace("_", " ").capitalize())
    type = "text"
    position = factory.Sequence(lambda n: n)


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    agent = factory.SubFactory(AgentFactory)
    name = factory.Sequence(lambda n: f"Person {n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    identity = Identity.VERIFIED
    identity_source = "api"


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    agent = factory.SubFactory(AgentFactory)
    name = factory.Sequence(lambda n: f"tag-{n}")


class StripeAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StripeAccount

    contact = factory.SubFactory(ContactFactory)
    label = "Main"
    stripe_id = factory.Sequence(lambda n: f"cus_TEST{n:06d}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    agent = factory.SubFactory(AgentFactory)
    contact = None


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Message.Role.VISITOR
    body = "Hello"
