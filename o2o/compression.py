"""Pages go out gzipped to browsers that ask; nothing else does here.

HTML is what a phone on a slow link waits for before its first paint (bench/page_weight.py: the
vendor page's document 18.6 KB → 3.9 KB). Static files are compressed ahead of time (WhiteNoise's
manifest storage) and are never seen by this middleware. The API's JSON stays as it is: its
clients are the pages' small scripts and partners, and an API client that asks for gzip but
cannot unpack it (schemathesis' test client does) would break. Against BREACH, Django's
GZipMiddleware pads each response at random, and CSRF tokens are masked anew in each response.
"""

from django.middleware.gzip import GZipMiddleware


class PageGZipMiddleware(GZipMiddleware):
    def process_response(self, request, response):
        if not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)
