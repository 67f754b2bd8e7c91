"""Placeholder until the dashboard lands."""

from django.http import HttpResponse


def dataset_list(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def dataset_compare(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def dataset_detail(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)
