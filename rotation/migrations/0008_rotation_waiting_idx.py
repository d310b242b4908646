# The home page lists queued rotations waiting on an offline gateway (issue 12, defect 1).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("rotation", "0006_unanswered_requests"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="rotation",
            index=models.Index(
                condition=models.Q(("status", "queued")),
                fields=["status", "gateway_name", "-created_at", "-id"],
                name="rotation_waiting_idx",
            ),
        ),
    ]
