"""Under ASGI a sync-only middleware makes every request cross from the event loop to a thread
and back (for the middleware inside it) before the view's own thread: WhiteNoise's was the only
one. The project's middleware can all run on the loop, and the static files are served as before."""

import asyncio

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils.module_loading import import_string

from o2o.staticfiles import StaticFilesMiddleware


def test_every_middleware_can_run_on_the_event_loop():
    sync_only = [
        path
        for path in settings.MIDDLEWARE
        if not getattr(import_string(path), "async_capable", False)
    ]
    assert sync_only == []


def test_static_files_are_served_and_pages_passed_on_without_a_thread_of_their_own(tmp_path):
    asyncio.run(_served_on_the_loop(tmp_path))


async def _served_on_the_loop(tmp_path):
    (tmp_path / "hello.txt").write_text("hello")

    async def page(request):
        return HttpResponse("the page")

    middleware = StaticFilesMiddleware(page)
    middleware.add_files(str(tmp_path), prefix="/files-test/")
    assert iscoroutinefunction(middleware)
    served = await middleware(RequestFactory().get("/files-test/hello.txt"))
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == b"hello"
    served.file_to_stream.close()  # (not served.close(): that signals request_finished)
    passed = await middleware(RequestFactory().get("/vendors/"))
    assert passed.content == b"the page"


def test_in_a_sync_chain_it_is_whitenoise_as_before(tmp_path):
    (tmp_path / "hello.txt").write_text("hello")
    middleware = StaticFilesMiddleware(lambda request: HttpResponse("the page"))
    middleware.add_files(str(tmp_path), prefix="/files-test/")
    assert not iscoroutinefunction(middleware)
    served = middleware(RequestFactory().get("/files-test/hello.txt"))
    assert b"".join(served.streaming_content) == b"hello"
    served.file_to_stream.close()  # (not served.close(): that signals request_finished)
    assert middleware(RequestFactory().get("/vendors/")).content == b"the page"
