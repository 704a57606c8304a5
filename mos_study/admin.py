from django.contrib import admin

from . import models


@admin.register(models.Method)
class MethodAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "created"]
    list_filter = ["kind"]


@admin.register(models.TestImage)
class TestImageAdmin(admin.ModelAdmin):
    list_display = ["dataset", "name", "width", "height"]
    list_filter = ["dataset"]


@admin.register(models.Output)
class OutputAdmin(admin.ModelAdmin):
    list_display = ["method", "image", "sha256", "created"]
    list_filter = ["method", "image__dataset"]


@admin.register(models.BenchmarkRun)
class BenchmarkRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "status", "started", "finished"]
    list_filter = ["status"]


@admin.register(models.Metric)
class MetricAdmin(admin.ModelAdmin):
    list_display = ["output", "y_convention", "crop_border", "psnr_y", "ssim_y"]
