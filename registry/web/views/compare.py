"""Placeholder until the dashboard lands."""

from django.http import HttpResponse


def compare(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)
