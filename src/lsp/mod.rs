//! `xf lsp`: a Language Server Protocol server over stdio, for `.xf`
//! transforms and `.xfp` pipeline files.
//!
//! What it answers, each from what the rest of xf already holds:
//! - **diagnostics** ([`check`]): the errors and warnings `xf check` gives,
//!   from the same loaders (`Transform::from_text_at`, the pipeline
//!   loader's `load_text`), with their codes, the other places they name
//!   (the `{` of an unclosed block, an included file's own problems) and
//!   their "did you mean" and "write `…`" notes as quick fixes;
//! - **completion** ([`complete`]): statements, functions (the function
//!   table's signature and meaning), template filters and tests, the
//!   record's field paths from the schemas the transform validates against
//!   (or the paths of its `NAME.tests/` inputs), lookups, variables and
//!   `request.…`;
//! - **hover** ([`hover`]), **go to definition** and **document symbols**
//!   ([`navigate`]), and **formatting** through `xf fmt`'s own layout.
//!
//! Highlighting is left to the TextMate grammar (`editors/xf.tmLanguage.json`),
//! which every editor here reads: no semantic tokens.
//!
//! **The crate.** `lsp-server` (rust-analyzer's scaffold: a `Connection` of
//! two crossbeam channels, a reader and a writer thread, nothing else) with
//! `lsp-types`. The work here is synchronous and short (a check is
//! milliseconds), so an async runtime (tower-lsp-server, async-lsp) would
//! bring tokio into the `cli` feature for nothing; these two add five small
//! crates. The queue being a channel also gives the debounce: every message
//! waiting, and those that follow within [`QUIET`] (10 ms) of an edit, are
//! taken before anything is checked, so of a burst of edits only the last
//! text is checked.
//!
//! **Bounds.** A document over [`MAX_DOCUMENT`] (1 MiB) is not checked, and
//! gets one diagnostic saying so; the other requests answer nothing for it.
//! Files a document names are read as `xf run` reads them: confined to its
//! folder and the `--allow-dir`s, regular files only, bounded
//! ([`xf::files`]). Each message is handled under `catch_unwind`, so that a
//! bug answers one request with an error rather than ending the server.

// lsp_types::Uri hashes and compares by its text; the cell clippy sees is fluent-uri's own cache.
#![allow(clippy::mutable_key_type)]

mod check;
mod complete;
mod fields;
mod hover;
mod navigate;
mod outline;
mod text;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{self as note, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::{
    CodeActionProviderCapability, CompletionOptions, HoverProviderCapability, OneOf,
    PublishDiagnosticsParams, ServerCapabilities, ServerInfo, TextDocumentSyncCapability,
    TextDocumentSyncKind, Uri,
};
use serde_json::Value;
use xf::{Limits, LoadOptions};

use crate::shared_cli::FileArgs;
use text::Document;

/// The largest document checked and answered for: 1 MiB. A bigger one gets a
/// diagnostic saying so (`xf check` still checks it, up to 16 MiB).
pub(crate) const MAX_DOCUMENT: usize = 1 << 20;

/// How long a burst of edits may pause before the last text is checked:
/// short enough that a check still comes well within 50 ms of a keystroke.
const QUIET: std::time::Duration = std::time::Duration::from_millis(10);

/// `xf lsp`'s options.
#[derive(clap::Args)]
pub(crate) struct LspArgs {
    #[command(flatten)]
    files: FileArgs,
    /// Talk over standard input and output (the only way, and the default; accepted because
    /// some clients pass it)
    #[arg(long)]
    stdio: bool,
}

/// What kind of file a document is, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A `.xf` transform (also any other name: the language's default).
    Transform,
    /// A `.xfp` pipeline file.
    Pipeline,
}

/// `xf lsp`: serves one client on stdin and stdout until it says `exit`.
pub(crate) fn lsp(args: LspArgs) -> ExitCode {
    let _ = args.stdio;
    let options = args.files.options(Limits::DEFAULT);
    let (connection, threads) = Connection::stdio();
    let served = serve(&connection, options);
    drop(connection);
    let joined = threads.join();
    match served.and(joined.map_err(|e| e.to_string())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xf lsp: {error}");
            ExitCode::from(2)
        }
    }
}

/// The server's state: the open documents and what was last said of each.
pub(crate) struct Server {
    options: LoadOptions,
    documents: HashMap<Uri, Document>,
    /// Each open document's diagnostics as last published (hover explains their codes).
    published: HashMap<Uri, Vec<lsp_types::Diagnostic>>,
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(
                [".", "|", "\"", " "]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        ..ServerCapabilities::default()
    }
}

fn serve(connection: &Connection, options: LoadOptions) -> Result<(), String> {
    let (id, _params) = connection.initialize_start().map_err(|e| e.to_string())?;
    let result = lsp_types::InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo {
            name: "xf".to_string(),
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
    };
    connection
        .initialize_finish(id, to_json(&result))
        .map_err(|e| e.to_string())?;
    let mut server = Server {
        options,
        documents: HashMap::new(),
        published: HashMap::new(),
    };
    server.run(connection)
}

impl Server {
    /// Takes every message waiting, handles each in order (edits only
    /// replace the text), and goes on taking those that follow within
    /// [`QUIET`] of the last; then checks each document they changed. Of
    /// several edits in a burst, only the last text is checked.
    fn run(&mut self, connection: &Connection) -> Result<(), String> {
        while let Ok(first) = connection.receiver.recv() {
            let mut changed: Vec<Uri> = Vec::new();
            let mut next = Some(first);
            while let Some(message) = next.take() {
                if self.handle(connection, message, &mut changed)? {
                    return Ok(());
                }
                next = match connection.receiver.try_recv() {
                    Ok(message) => Some(message),
                    // Typing goes on in bursts: wait for a short quiet
                    // spell before checking, but only after an edit.
                    Err(_) if !changed.is_empty() => connection.receiver.recv_timeout(QUIET).ok(),
                    Err(_) => None,
                };
            }
            for uri in changed {
                let diagnostics = self.guarded_check(&uri);
                self.publish(connection, uri, diagnostics)?;
            }
        }
        Ok(())
    }

    /// Handles one message; `true` when the server is to stop.
    fn handle(
        &mut self,
        connection: &Connection,
        message: Message,
        changed: &mut Vec<Uri>,
    ) -> Result<bool, String> {
        match message {
            Message::Request(request) => {
                if connection
                    .handle_shutdown(&request)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(true);
                }
                let response = self.answer(request);
                send(connection, Message::Response(response))?;
            }
            Message::Notification(notification) => {
                if notification.method == note::Exit::METHOD {
                    return Ok(true);
                }
                self.guarded_notice(connection, notification, changed)?;
            }
            Message::Response(_) => {}
        }
        Ok(false)
    }

    /// A request's answer; a panic in it answers with an internal error.
    fn answer(&mut self, request: Request) -> Response {
        let id = request.id.clone();
        let method = request.method.clone();
        match catch_unwind(AssertUnwindSafe(|| self.dispatch(request))) {
            Ok(Ok(result)) => Response::new_ok(id, result),
            Ok(Err((code, message))) => Response::new_err(id, code as i32, message),
            Err(_) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                format!("xf lsp: internal error answering {method}"),
            ),
        }
    }

    fn dispatch(&mut self, request: Request) -> Result<Value, (ErrorCode, String)> {
        match request.method.as_str() {
            req::Completion::METHOD => {
                let params: lsp_types::CompletionParams = params(request.params)?;
                let at = params.text_document_position;
                Ok(to_json(&self.document(&at.text_document.uri).map(
                    |document| complete::complete(document, at.position, &self.options),
                )))
            }
            req::HoverRequest::METHOD => {
                let params: lsp_types::HoverParams = params(request.params)?;
                let at = params.text_document_position_params;
                let uri = &at.text_document.uri;
                let published = self.published.get(uri).map_or(&[][..], Vec::as_slice);
                Ok(to_json(&self.document(uri).and_then(|document| {
                    hover::hover(document, at.position, published, &self.options)
                })))
            }
            req::GotoDefinition::METHOD => {
                let params: lsp_types::GotoDefinitionParams = params(request.params)?;
                let at = params.text_document_position_params;
                let uri = &at.text_document.uri;
                Ok(to_json(&self.document(uri).and_then(|document| {
                    navigate::definition(document, uri, at.position, &self.options)
                })))
            }
            req::DocumentSymbolRequest::METHOD => {
                let params: lsp_types::DocumentSymbolParams = params(request.params)?;
                Ok(to_json(
                    &self
                        .document(&params.text_document.uri)
                        .map(navigate::symbols),
                ))
            }
            req::Formatting::METHOD => {
                let params: lsp_types::DocumentFormattingParams = params(request.params)?;
                Ok(to_json(
                    &self
                        .document(&params.text_document.uri)
                        .and_then(navigate::format),
                ))
            }
            req::CodeActionRequest::METHOD => {
                let params: lsp_types::CodeActionParams = params(request.params)?;
                let uri = params.text_document.uri.clone();
                Ok(to_json(&self.document(&uri).map(|document| {
                    check::code_actions(document, &uri, &self.options, params.range)
                })))
            }
            _ => Err((
                ErrorCode::MethodNotFound,
                format!("xf lsp does not answer {}", request.method),
            )),
        }
    }

    /// The open document at `uri`, unless it is over [`MAX_DOCUMENT`].
    fn document(&self, uri: &Uri) -> Option<&Document> {
        self.documents
            .get(uri)
            .filter(|document| document.text.len() <= MAX_DOCUMENT)
    }

    /// A notification handled; a panic in it is said in the log, and the
    /// server goes on.
    fn guarded_notice(
        &mut self,
        connection: &Connection,
        notification: Notification,
        changed: &mut Vec<Uri>,
    ) -> Result<(), String> {
        let method = notification.method.clone();
        let closed = catch_unwind(AssertUnwindSafe(|| self.notice(notification, changed)));
        match closed {
            Ok(Some(uri)) => self.publish(connection, uri, Vec::new()),
            Ok(None) => Ok(()),
            Err(_) => {
                log(
                    connection,
                    &format!("xf lsp: internal error handling {method}"),
                );
                Ok(())
            }
        }
    }

    /// Applies a notification; the URI of a document it closed, whose
    /// diagnostics are then cleared.
    fn notice(&mut self, notification: Notification, changed: &mut Vec<Uri>) -> Option<Uri> {
        match notification.method.as_str() {
            note::DidOpenTextDocument::METHOD => {
                let params: lsp_types::DidOpenTextDocumentParams =
                    serde_json::from_value(notification.params).ok()?;
                let item = params.text_document;
                self.open(item.uri.clone(), item.text);
                mark(changed, item.uri);
                None
            }
            note::DidChangeTextDocument::METHOD => {
                let params: lsp_types::DidChangeTextDocumentParams =
                    serde_json::from_value(notification.params).ok()?;
                let uri = params.text_document.uri;
                // Full sync: the last change holds the whole text.
                let text = params.content_changes.into_iter().last()?.text;
                self.open(uri.clone(), text);
                mark(changed, uri);
                None
            }
            note::DidCloseTextDocument::METHOD => {
                let params: lsp_types::DidCloseTextDocumentParams =
                    serde_json::from_value(notification.params).ok()?;
                let uri = params.text_document.uri;
                self.documents.remove(&uri);
                self.published.remove(&uri);
                changed.retain(|u| *u != uri);
                Some(uri)
            }
            _ => None,
        }
    }

    fn open(&mut self, uri: Uri, text: String) {
        let path = file_path(&uri);
        let kind = match path.as_ref().and_then(|p| p.extension()) {
            Some(extension) if extension == "xfp" => Kind::Pipeline,
            _ if uri.as_str().ends_with(".xfp") => Kind::Pipeline,
            _ => Kind::Transform,
        };
        self.documents.insert(uri, Document::new(text, kind, path));
    }

    /// The diagnostics of the document at `uri`; a panic in checking is one
    /// diagnostic saying so.
    fn guarded_check(&self, uri: &Uri) -> Vec<lsp_types::Diagnostic> {
        let Some(document) = self.documents.get(uri) else {
            return Vec::new();
        };
        catch_unwind(AssertUnwindSafe(|| {
            check::diagnostics(document, uri, &self.options)
        }))
        .unwrap_or_else(|_| vec![check::internal_error(document)])
    }

    fn publish(
        &mut self,
        connection: &Connection,
        uri: Uri,
        diagnostics: Vec<lsp_types::Diagnostic>,
    ) -> Result<(), String> {
        if self.documents.contains_key(&uri) {
            self.published.insert(uri.clone(), diagnostics.clone());
        }
        let params = PublishDiagnosticsParams::new(uri, diagnostics, None);
        let notification = Notification::new(
            note::PublishDiagnostics::METHOD.to_string(),
            to_json(&params),
        );
        send(connection, Message::Notification(notification))
    }
}

fn mark(changed: &mut Vec<Uri>, uri: Uri) {
    if !changed.contains(&uri) {
        changed.push(uri);
    }
}

fn send(connection: &Connection, message: Message) -> Result<(), String> {
    connection
        .sender
        .send(message)
        .map_err(|_| "the client went away".to_string())
}

/// A line in the client's log (`window/logMessage`).
fn log(connection: &Connection, message: &str) {
    let params = lsp_types::LogMessageParams {
        typ: lsp_types::MessageType::ERROR,
        message: message.to_string(),
    };
    let notification = Notification::new(note::LogMessage::METHOD.to_string(), to_json(&params));
    let _ = connection.sender.send(Message::Notification(notification));
}

fn params<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, (ErrorCode, String)> {
    serde_json::from_value(value).map_err(|e| (ErrorCode::InvalidParams, e.to_string()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The file a `file:` URI names.
pub(crate) fn file_path(uri: &Uri) -> Option<PathBuf> {
    if !uri
        .scheme()
        .is_some_and(|scheme| scheme.as_str().eq_ignore_ascii_case("file"))
    {
        return None;
    }
    let path = percent_encoding::percent_decode_str(uri.path().as_str())
        .decode_utf8()
        .ok()?;
    Some(PathBuf::from(path.as_ref()))
}

/// The `file:` URI of a path (made absolute from the current directory).
pub(crate) fn file_uri(path: &std::path::Path) -> Option<Uri> {
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let absolute = std::path::absolute(path).ok()?;
    let text = absolute.to_str()?;
    let encoded = percent_encoding::utf8_percent_encode(text, PATH).to_string();
    format!("file://{encoded}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// No text and no place in it makes a request panic: the language's
        /// punctuation, quotes of every kind, characters of every width.
        #[test]
        fn any_text_and_place_is_answered_without_panic(
            text in "([{}\\[\\]()\"'“#|.,:=\n\r a-z_0-9é𝄞]|\"\"\"|\\{\\{|\\{%|when |set |let |validate |nest |lookup ){0,80}",
            line in 0u32..12,
            character in 0u32..40,
            pipeline in any::<bool>(),
        ) {
            let kind = if pipeline { Kind::Pipeline } else { Kind::Transform };
            let document = Document::new(text, kind, None);
            let options = LoadOptions::default();
            let at = lsp_types::Position::new(line, character);
            let _ = complete::complete(&document, at, &options);
            let _ = hover::hover(&document, at, &[], &options);
            let uri: Uri = "untitled:x".parse().unwrap();
            let _ = navigate::definition(&document, &uri, at, &options);
            let _ = navigate::symbols(&document);
            let _ = navigate::format(&document);
            let _ = check::code_actions(&document, &uri, &options, lsp_types::Range::new(at, at));
        }
    }

    #[test]
    fn file_uris_and_paths_round_trip() {
        let path = std::path::Path::new("/tmp/a b/é#1.xf");
        let uri = file_uri(path).unwrap();
        assert_eq!(uri.as_str(), "file:///tmp/a%20b/%C3%A9%231.xf");
        assert_eq!(file_path(&uri).unwrap(), path);
        let other: Uri = "untitled:Untitled-1".parse().unwrap();
        assert_eq!(file_path(&other), None);
    }
}
