use anyhow::Context;
use rfo_api::App;
use rfo_api::config::ApiConfig;
use rfo_common::config::ProcessEnv;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rfo_common::telemetry::init();
    let config = ApiConfig::from_env(&ProcessEnv)?;
    let app = App::build(&config).await?;
    let address = (config.host.as_str(), config.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| {
            format!(
                "failed to listen on {}:{}; is API_PORT in use?",
                config.host, config.port
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, topic = %config.kafka.topic, "rfo-api listening");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("rfo-api stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds on Unix");
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown requested; finishing open requests");
}
