"""Placeholder until the dashboard lands."""

from django.http import HttpResponse


def model_list(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def model_detail(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def version_detail(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def experiment_list(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def experiment_detail(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def run_detail(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def metric_history(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)


def approval_list(request, *args, **kwargs):
    return HttpResponse("Not built yet.", status=501)
