from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from grading.reports.selectors import is_hr
from grading.reports.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create a token for the reports exports (/reports/export.json, .csv) for an HR user. "
        "The token acts as that user; the secret is printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="HR system", help="what the token is for")

    def handle(self, *args: object, **options: object) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        if not is_hr(user):
            raise CommandError(f"{user} is not in the HR group: the token would be refused.")
        token, secret = api_token_create(user=user, name=str(options["name"]))
        self.stdout.write(f"Token {token.prefix}… for {user}: {secret}")
        self.stdout.write(
            "Use it as:  Authorization: Bearer <token>   (shown once; revoke in /admin/)"
        )
