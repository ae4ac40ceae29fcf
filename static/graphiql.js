// Starts GraphiQL (with the Explorer plugin) against the endpoint this page was served from.
// Loaded after the React, ReactDOM, GraphiQL and Explorer browser builds, which define the
// globals React, ReactDOM, GraphiQL and GraphiQLPluginExplorer.
(function () {
  "use strict";

  // This page is served by GET /graphql itself: queries go to the same URL, subscriptions to
  // the same URL over WebSocket.
  const endpoint = window.location.origin + window.location.pathname;
  const socket = endpoint.replace(/^http/, "ws");

  // GraphiQL sends the Headers tab with every HTTP request and, for subscriptions, as the
  // graphql-ws connection_init payload, which is where SHMS reads a WebSocket's token.
  const fetcher = GraphiQL.createFetcher({ url: endpoint, subscriptionUrl: socket });

  const defaultQuery = `# SHMS GraphiQL
#
# Every request but introspection needs a bearer token from
# POST /oauth/token (demo accounts: README, "Signing in"):
#
#   curl -s ${window.location.origin}/oauth/token \\
#     -d grant_type=password -d username=frontdesk \\
#     -d password=demo-frontdesk-pass
#
# Put it in the Headers tab below:
#   {"Authorization": "Bearer <access_token>"}
# then run this (Ctrl-Enter):

query Viewer {
  viewer { subject roles departmentId }
}
`;

  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true, // the token survives a reload (kept in this browser only)
      defaultEditorToolsVisibility: "headers", // opens on the tab a new user needs first
      inputValueDeprecation: true,
    }),
  );
})();
