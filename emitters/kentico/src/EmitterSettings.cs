using CMS.DataEngine;

namespace CommerceSync.Emitter
{
    /// <summary>
    /// Global settings keys (create them in the Modules application, module
    /// "CommerceSync.Emitter", Settings tab; see README.md).
    /// </summary>
    internal static class EmitterSettings
    {
        /// <summary>The receiver, e.g. https://sync.example.com/webhooks/kentico.</summary>
        public static string Url
        {
            get { return SettingsKeyInfoProvider.GetValue("CommerceSyncWebhookUrl"); }
        }

        /// <summary>The "whsec_..." secret commerce-sync has as webhooks.kentico.</summary>
        public static string Secret
        {
            get { return SettingsKeyInfoProvider.GetValue("CommerceSyncWebhookSecret"); }
        }

        /// <summary>
        /// The Kentico user name commerce-sync's REST calls authenticate as. Its own writes
        /// (a status or tracking number written back) raise no event, so nothing echoes.
        /// </summary>
        public static string IntegrationUserName
        {
            get { return SettingsKeyInfoProvider.GetValue("CommerceSyncIntegrationUserName"); }
        }

        /// <summary>The code name (StatusName) of the site's cancelled order status.</summary>
        public static string CancelledStatusName
        {
            get { return SettingsKeyInfoProvider.GetValue("CommerceSyncCancelledStatusName"); }
        }
    }
}
