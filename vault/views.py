from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from vault.access import folders_for_user


@login_required
def home(request):
    return render(request, "vault/home.html", {"folders": folders_for_user(request.user)})
