// CloudFront Function (cloudfront-js-2.0), viewer request, on the web app's default behaviour.
// A path whose last segment has no file extension is a route of the single-page app (/, /photos/abc, /people):
// it is answered with /index.html, and the app's router reads the address. A path with an extension is a file of
// the build (/assets/index-1a2b3c.js, /config.json, /favicon.svg) and goes to the bucket as asked, so a missing
// asset stays a 404 instead of turning into the app's page.
function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var last = uri.substring(uri.lastIndexOf('/') + 1);
  if (last.indexOf('.') === -1) {
    request.uri = '/index.html';
  }
  return request;
}
