"""WhiteNoise, able to run on the event loop.

Under ASGI Django builds the middleware chain around an async core, and every middleware but
WhiteNoise's can run either way. WhiteNoise's middleware is sync only, so each request crossed
from the event loop to a thread for it and back to the loop for the middleware inside it, before
crossing again to the view's thread: two extra hops per request (bench/lunch_rush.py's py-spy of
the web processes found them). This subclass serves the same files the same way, and passes every
other request on without leaving the loop."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=settings):
        super().__init__(get_response, settings)
        self.async_mode = get_response is not None and iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        if self.autorefresh:  # DEBUG: looks on disk each time
            static_file = await sync_to_async(self.find_file, thread_sensitive=False)(
                request.path_info
            )
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            # Opens the file (and stats it): off the loop.
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
