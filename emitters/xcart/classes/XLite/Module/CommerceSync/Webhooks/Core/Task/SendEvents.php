<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5: sends the outbox.
 */

namespace XLite\Module\CommerceSync\Webhooks\Core\Task;

use XLite\Module\CommerceSync\Webhooks\Core\Signer;
use XLite\Module\CommerceSync\Webhooks\Model\Event;

/**
 * A periodic task of X-Cart's scheduler (X-Cart 5.3.2 classes/XLite/Core/Task/Base/Periodic.php;
 * registered in install.yaml as XLite\Model\Task, like XC\MailChimp's UpdateLists). X-Cart runs
 * due tasks from `php console.php --target=cron` (Controller/Console/Cron.php), which the
 * merchant schedules every few minutes (xcart-docs, "Configuring Your Server to Run Scheduled
 * X-Cart Tasks"). Each run sends what is due, oldest first:
 *
 * - 2xx: sent. The receiver answers 202 for a new event and 200 for a repeat
 *   (docs/project-contracts.md §1.5);
 * - 401 (wrong secret), 403, 404 (wrong URL), 408, 429, 5xx (503: no secret configured
 *   there yet) and no answer: tried again after 1, 2, 4, ... minutes (at most 6 hours
 *   apart) until `max_attempts` attempts, then given up. The first three are settings
 *   a person can correct while the events wait;
 * - any other 4xx (413, 422: the body) is refused for good: resending the same bytes
 *   cannot change the answer.
 *
 * Each attempt is signed afresh (the receiver refuses a timestamp five minutes off) with the
 * same webhook-id and body. A run stops at the first attempt that gets no answer, a 429 or
 * a 5xx, so a receiver that is down costs one timeout a run. Sent events are deleted a
 * week after they were sent.
 */
class SendEvents extends \XLite\Core\Task\Base\Periodic
{
    const BATCH = 100;
    const FIRST_DELAY = 60;
    const MAX_DELAY = 21600;
    const KEEP_SENT = 604800; // the change feed reads the outbox back this far (README.md)
    const TIMEOUT = 10;

    /**
     * The 4xx answers tried again.
     *
     * @var integer[]
     */
    protected static $retried = array(401, 403, 404, 408, 429);

    public function getTitle()
    {
        return static::t('commerce-sync: send store events');
    }

    protected function getPeriod()
    {
        return static::INT_1_MIN;
    }

    /**
     * Runs only once the endpoint and the secret are set (the module's settings page).
     *
     * @return boolean
     */
    protected function isValid()
    {
        $config = $this->getCommerceSyncConfig();

        return parent::isValid() && $config->endpoint_url && $config->secret;
    }

    protected function runStep()
    {
        $config = $this->getCommerceSyncConfig();
        $repo = \XLite\Core\Database::getRepo('XLite\Module\CommerceSync\Webhooks\Model\Event');
        $maxAttempts = max(1, (int) $config->max_attempts);

        foreach ($repo->findDue(\XLite\Core\Converter::time(), static::BATCH) as $event) {
            if (!$this->deliver($event, $config->endpoint_url, $config->secret, $maxAttempts)) {
                // The receiver is down or busy: the rest waits for the next run rather
                // than each waiting out its own timeout now.
                break;
            }
        }
        \XLite\Core\Database::getEM()->flush();

        $repo->deleteSentBefore(\XLite\Core\Converter::time() - static::KEEP_SENT);
    }

    /**
     * One attempt at one event.
     *
     * @param Event   $event       The event
     * @param string  $url         The receiver, e.g. https://sync.example.com/webhooks/xcart
     * @param string  $secret      The whsec_... secret
     * @param integer $maxAttempts Attempts before giving up
     *
     * @return boolean Whether the receiver answered (anything but no answer, 429, 5xx)
     */
    protected function deliver(Event $event, $url, $secret, $maxAttempts)
    {
        $now = \XLite\Core\Converter::time();
        $request = new \XLite\Core\HTTP\Request($url);
        $request->verb = 'POST';
        $request->requestTimeout = static::TIMEOUT;
        foreach (Signer::headers($secret, $event->getEventId(), $now, $event->getBody()) as $name => $value) {
            $request->setHeader($name, $value);
        }
        $request->body = $event->getBody();
        $response = $request->sendRequest();
        $code = $response ? (int) $response->code : 0;
        $error = $code ? 'HTTP ' . $code : 'no answer: ' . $request->getErrorMessage();

        if (200 <= $code && 300 > $code) {
            $event->recordAttempt(Event::STATE_SENT, '', $now);
        } elseif (400 <= $code && 500 > $code && !in_array($code, static::$retried, true)) {
            $event->recordAttempt(Event::STATE_REFUSED, $error, $now);
        } else {
            if ($event->getAttempts() + 1 >= $maxAttempts) {
                $event->recordAttempt(Event::STATE_GAVE_UP, $error, $now);
            } else {
                $delay = min(static::MAX_DELAY, static::FIRST_DELAY * pow(2, $event->getAttempts()));
                $event->recordAttempt(Event::STATE_PENDING, $error, $now, $now + (int) $delay);
            }
        }
        if (Event::STATE_SENT !== $event->getState() && Event::STATE_PENDING !== $event->getState()) {
            \XLite\Logger::getInstance()->log(
                'commerce-sync: event ' . $event->getEventId() . ' ' . $event->getState() . ' (' . $error . ')',
                LOG_ERR
            );
        }

        return 0 !== $code && 429 !== $code && 500 > $code;
    }

    /**
     * The module's settings (install.yaml, category CommerceSync\Webhooks).
     *
     * @return \XLite\Core\ConfigCell
     */
    protected function getCommerceSyncConfig()
    {
        return \XLite\Core\Config::getInstance()->CommerceSync->Webhooks;
    }
}
